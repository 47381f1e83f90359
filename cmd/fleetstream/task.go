package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// apiClient calls the REST API for the task and queue commands.
type apiClient struct {
	server, key, output string
}

func (c *apiClient) flags(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&c.server, "server", "http://127.0.0.1:8080", "base URL of the fleetstream API")
	fs.StringVar(&c.key, "api-key", "", "API key secret (read scope; write scope for enqueue, cancel and requeue)")
	fs.StringVarP(&c.output, "output", "o", "table", "output: table or json")
}

// call sends a JSON request and decodes the answer into out; an error
// carries the API's message.
func (c *apiClient) call(ctx context.Context, method, path string, body, out any) error {
	if c.key == "" {
		return errors.New("no API key: pass --api-key (or FLEETSTREAM_API_KEY)")
	}
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.server, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("--server %q: %w", c.server, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w (is the API running at --server %s?)", method, path, err, c.server)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Message != "" {
			return fmt.Errorf("%s (HTTP %d)", e.Message, resp.StatusCode)
		}
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	return json.Unmarshal(raw, out)
}

// taskView is the part of a TaskInfo the table shows.
type taskView struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Queue     string    `json:"queue"`
	State     string    `json:"state"`
	Attempt   int       `json:"attempt"`
	UpdatedAt time.Time `json:"updated_at"`
	Reason    string    `json:"reason"`
	LastError string    `json:"last_error"`
	Cancel    bool      `json:"cancel_requested"`
}

func (c *apiClient) print(w io.Writer, v any, table func(*tabwriter.Writer)) error {
	if c.output == "json" || table == nil {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	if c.output != "table" {
		return fmt.Errorf("--output %q: use table or json", c.output)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func taskCmd() *cobra.Command {
	c := &apiClient{}
	cmd := &cobra.Command{Use: "task", Short: "List, inspect, enqueue, cancel and requeue collection tasks through the API"}
	c.flags(cmd)

	var filter struct {
		state, typ, queue, parent string
		limit                     int
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List tasks, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"state": filter.state, "type": filter.typ, "queue": filter.queue, "parent_id": filter.parent} {
				if v != "" {
					q.Set(k, v)
				}
			}
			q.Set("page_size", fmt.Sprint(filter.limit))
			var out struct {
				Tasks []json.RawMessage `json:"tasks"`
				Next  string            `json:"next_page_token"`
			}
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/tasks?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			views := make([]taskView, len(out.Tasks))
			for i, raw := range out.Tasks {
				if err := json.Unmarshal(raw, &views[i]); err != nil {
					return err
				}
			}
			return c.print(cmd.OutOrStdout(), out.Tasks, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tTYPE\tQUEUE\tSTATE\tATTEMPT\tUPDATED\tNOTE")
				for _, v := range views {
					note := v.Reason
					if note == "" {
						note = v.LastError
					}
					if v.Cancel {
						note = "cancel requested; " + note
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", v.ID, v.Type, v.Queue, v.State, v.Attempt, v.UpdatedAt.Local().Format(time.DateTime), note)
				}
			})
		},
	}
	fs := list.Flags()
	fs.StringVar(&filter.state, "state", "", "only tasks in this state: pending, scheduled, active, retrying, completed, dead, cancelled")
	fs.StringVar(&filter.typ, "type", "", "only tasks of this type")
	fs.StringVar(&filter.queue, "queue", "", "only tasks of this queue: high, normal, low")
	fs.StringVar(&filter.parent, "parent", "", "only tasks fanned out by this task id")
	fs.IntVar(&filter.limit, "limit", 100, "most tasks shown (1-1000)")

	inspect := &cobra.Command{
		Use:   "inspect ID",
		Short: "Show one task with its payload, attempts and latest error",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out json.RawMessage
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/tasks/"+url.PathEscape(args[0]), nil, &out); err != nil {
				return err
			}
			return c.print(cmd.OutOrStdout(), out, nil)
		},
	}

	var reason string
	cancel := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a pending, scheduled, retrying or running task",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.change(cmd, "/api/v1/tasks/"+url.PathEscape(args[0])+"/cancel", map[string]any{"reason": reason}, "cancellation requested")
		},
	}
	cancel.Flags().StringVar(&reason, "reason", "", "why (shown in the task's status)")

	requeue := &cobra.Command{
		Use:   "requeue ID",
		Short: "Put a dead-lettered task back on its queue with fresh attempts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.change(cmd, "/api/v1/tasks/"+url.PathEscape(args[0])+"/requeue", map[string]any{}, "requeued")
		},
	}

	var sub struct {
		id, payload, queue, notBefore, deadline string
		maxAttempts                             uint32
	}
	enqueue := &cobra.Command{
		Use:   "enqueue TYPE [PAYLOAD]",
		Short: "Submit a task, e.g. fleetstream task enqueue aws.collect_all '{\"regions\":[\"eu-west-1\"]}'",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"type": args[0], "queue": sub.queue, "id": sub.id, "max_attempts": sub.maxAttempts}
			if len(args) == 2 {
				if sub.payload != "" {
					return errors.New("give the payload once: as the second argument or with --payload")
				}
				sub.payload = args[1]
			}
			if sub.payload != "" {
				var p any
				if err := json.Unmarshal([]byte(sub.payload), &p); err != nil {
					return fmt.Errorf("--payload is not JSON: %w", err)
				}
				body["payload"] = p
			}
			for flag, v := range map[string]string{"not_before": sub.notBefore, "deadline": sub.deadline} {
				if v == "" {
					continue
				}
				at, err := parseWhen(v)
				if err != nil {
					return fmt.Errorf("--%s: %w", strings.ReplaceAll(flag, "_", "-"), err)
				}
				body[flag] = at.UTC().Format(time.RFC3339Nano)
			}
			return c.change(cmd, "/api/v1/tasks", body, "enqueued")
		},
	}
	fs = enqueue.Flags()
	fs.StringVar(&sub.payload, "payload", "", "the handler's JSON payload (or give it as the second argument)")
	fs.StringVar(&sub.queue, "queue", "normal", "high, normal or low")
	fs.StringVar(&sub.id, "id", "", "task id (default: a new UUIDv7)")
	fs.Uint32Var(&sub.maxAttempts, "max-attempts", 0, "attempts before it is dead-lettered (0: the workers' default)")
	fs.StringVar(&sub.notBefore, "not-before", "", "run no earlier than this: RFC 3339 time or a delay such as 10m")
	fs.StringVar(&sub.deadline, "deadline", "", "dead-letter if not done by then: RFC 3339 time or a delay such as 1h")

	cmd.AddCommand(list, inspect, cancel, requeue, enqueue)
	return cmd
}

// change posts a write and reports the task's state.
func (c *apiClient) change(cmd *cobra.Command, path string, body any, what string) error {
	var out json.RawMessage
	if err := c.call(cmd.Context(), http.MethodPost, path, body, &out); err != nil {
		return err
	}
	var v taskView
	if err := json.Unmarshal(out, &v); err != nil {
		return err
	}
	return c.print(cmd.OutOrStdout(), out, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "task %s (%s, %s queue): %s; state %s\n", v.ID, v.Type, v.Queue, what, v.State)
	})
}

// parseWhen reads an RFC 3339 time or a delay from now.
func parseWhen(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration such as 10m", s)
	}
	return t, nil
}

func queueCmd() *cobra.Command {
	c := &apiClient{}
	cmd := &cobra.Command{Use: "queue", Short: "Collection task queue statistics through the API"}
	c.flags(cmd)
	stats := &cobra.Command{
		Use:   "stats",
		Short: "Tasks per queue and type by state, and each queue's consumer lag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out fleetv1.QueueStats
			var raw json.RawMessage
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/queues/stats", nil, &raw); err != nil {
				return err
			}
			// The API's own message: the gateway's JSON is protojson.
			if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, &out); err != nil {
				return fmt.Errorf("queue stats: %w", err)
			}
			return c.print(cmd.OutOrStdout(), raw, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "QUEUE\tTYPE\tLAG\tPENDING\tSCHEDULED\tACTIVE\tRETRYING\tDEAD\tCOMPLETED\tCANCELLED")
				row := func(q, typ, lag string, c *fleetv1.TaskCounts) {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", q, typ, lag, c.GetPending(), c.GetScheduled(), c.GetActive(), c.GetRetrying(), c.GetDead(), c.GetCompleted(), c.GetCancelled())
				}
				for _, q := range out.Queues {
					row(q.GetQueue(), "*", fmt.Sprint(q.GetLag()), q.GetTotals())
					for _, t := range q.Types {
						row("", t.GetType(), "", t.GetCounts())
					}
				}
			})
		},
	}
	cmd.AddCommand(stats)
	return cmd
}
