package tasks

import (
	"fmt"
	"strconv"
	"strings"
)

// Policy decides which queue the next task comes from when several have
// tasks waiting. The zero Policy is strict.
type Policy struct {
	// weights of high, normal, low; all zero means strict priority.
	weights [3]int
}

// Strict always takes from the highest non-empty queue: low runs only when
// high and normal are empty, and may starve under sustained load.
func Strict() Policy { return Policy{} }

// Weighted shares the workers among non-empty queues in proportion to the
// weights (smooth weighted round robin): with 6,3,1 and every queue busy,
// ten tasks are six high, three normal and one low. No queue starves.
func Weighted(high, normal, low int) (Policy, error) {
	if high < 1 || normal < 1 || low < 1 {
		return Policy{}, fmt.Errorf("priority weights %d,%d,%d: each must be at least 1", high, normal, low)
	}
	return Policy{weights: [3]int{high, normal, low}}, nil
}

// ParsePolicy reads "strict", "weighted" (6,3,1) or "weighted:H,N,L".
func ParsePolicy(s string) (Policy, error) {
	switch {
	case s == "" || s == "strict":
		return Strict(), nil
	case s == "weighted":
		return Weighted(6, 3, 1)
	case strings.HasPrefix(s, "weighted:"):
		parts := strings.Split(strings.TrimPrefix(s, "weighted:"), ",")
		if len(parts) == 3 {
			var w [3]int
			var err error
			for i, p := range parts {
				if w[i], err = strconv.Atoi(strings.TrimSpace(p)); err != nil {
					break
				}
			}
			if err == nil {
				return Weighted(w[0], w[1], w[2])
			}
		}
	}
	return Policy{}, fmt.Errorf("priority policy %q: use strict, weighted or weighted:HIGH,NORMAL,LOW (e.g. weighted:6,3,1)", s)
}

// String is the form ParsePolicy reads.
func (p Policy) String() string {
	if p.strict() {
		return "strict"
	}
	return fmt.Sprintf("weighted:%d,%d,%d", p.weights[0], p.weights[1], p.weights[2])
}

func (p Policy) strict() bool { return p.weights == [3]int{} }

// picker applies a Policy; not safe for concurrent use.
type picker struct {
	policy  Policy
	current [3]int
}

// pick returns the queue to take from, given which queues have tasks, or
// -1 when none has.
func (k *picker) pick(ready [3]bool) int {
	if k.policy.strict() {
		for i, ok := range ready {
			if ok {
				return i
			}
		}
		return -1
	}
	best, total := -1, 0
	for i, ok := range ready {
		if !ok {
			continue
		}
		k.current[i] += k.policy.weights[i]
		total += k.policy.weights[i]
		if best < 0 || k.current[i] > k.current[best] {
			best = i
		}
	}
	if best >= 0 {
		k.current[best] -= total
	}
	return best
}
