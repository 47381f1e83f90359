package aws

import "time"

// attrs builds a resource's attributes, leaving out what the API did not
// report, so absent and empty encode alike.
type attrs map[string]any

func (a attrs) str(key string, v any) {
	switch s := v.(type) {
	case *string:
		if s != nil && *s != "" {
			a[key] = *s
		}
	case string:
		if s != "" {
			a[key] = s
		}
	}
}

func (a attrs) boolean(key string, v *bool) {
	if v != nil {
		a[key] = *v
	}
}

func (a attrs) int32(key string, v *int32) {
	if v != nil {
		a[key] = *v
	}
}

func (a attrs) time(key string, v *time.Time) {
	if v != nil && !v.IsZero() {
		a[key] = v.UTC().Format(time.RFC3339)
	}
}
