package auth

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Refusals aggregates requests the throttle turned away, so that refusing
// costs the server O(1) and writes nothing per request (issue 9: every 429
// wrote an audit row and a log line, 1,203 rows/s from one address). Note
// only counts; Flush writes one audit event per action and source for the
// interval ("N refusals from X", outcome throttled) and one log line in
// all. Run flushes every Interval and once more when it stops.
type Refusals struct {
	Auditor *Auditor
	// Interval is how often counts are written (1m when zero).
	Interval time.Duration
	// MaxSources bounds the distinct (action, source) pairs counted per
	// interval (10,000 when zero); refusals beyond it are summed into one
	// event without a source.
	MaxSources int
	// Log, when set, is called once per flush that wrote anything.
	Log func(refusals, sources int, since time.Time)
	Now func() time.Time // nil: time.Now

	mu       sync.Mutex
	start    time.Time
	counts   map[refusalKey]int
	overflow map[string]int // by action
}

type refusalKey struct{ action, source string }

func (r *Refusals) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Refusals) interval() time.Duration {
	if r.Interval > 0 {
		return r.Interval
	}
	return time.Minute
}

// Note counts one refusal of action (e.g. "auth.attempt") from source.
func (r *Refusals) Note(action, source string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts, r.overflow = map[refusalKey]int{}, map[string]int{}
		r.start = r.now()
	}
	k := refusalKey{action, source}
	limit := r.MaxSources
	if limit <= 0 {
		limit = 10_000
	}
	if _, ok := r.counts[k]; ok || len(r.counts) < limit {
		r.counts[k]++
		return
	}
	r.overflow[action]++
}

// Flush writes what was counted since the last flush: one audit event per
// action and source, with the count in details["refusals"] and the start
// of the interval in details["since"]. It returns the first write error;
// counts are not kept for a retry (a refusal is never worth more than
// one attempt to record it).
func (r *Refusals) Flush(ctx context.Context) error {
	r.mu.Lock()
	counts, overflow, since := r.counts, r.overflow, r.start
	r.counts, r.overflow = nil, nil
	r.mu.Unlock()
	if len(counts) == 0 && len(overflow) == 0 {
		return nil
	}
	keys := make([]refusalKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b refusalKey) int {
		return cmp.Or(strings.Compare(a.action, b.action), strings.Compare(a.source, b.source))
	})
	total := 0
	var errs []error
	write := func(action, source string, n int, extra map[string]string) {
		total += n
		d := map[string]string{"refusals": strconv.Itoa(n), "since": since.UTC().Format(time.RFC3339)}
		for k, v := range extra {
			d[k] = v
		}
		e := &deploy.AuditEvent{Action: action, Outcome: OutcomeThrottled, Source: source, Time: r.now(), Details: d}
		if err := r.Auditor.Record(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	for _, k := range keys {
		write(k.action, k.source, counts[k], nil)
	}
	actions := make([]string, 0, len(overflow))
	for a := range overflow {
		actions = append(actions, a)
	}
	slices.Sort(actions)
	for _, a := range actions {
		write(a, "", overflow[a], map[string]string{"note": "sources beyond the per-interval limit, summed"})
	}
	if r.Log != nil {
		r.Log(total, len(keys), since)
	}
	return errors.Join(errs...)
}

// due reports whether an interval has passed since counting started.
func (r *Refusals) due() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts != nil && r.now().Sub(r.start) >= r.interval()
}

// Run flushes whenever an interval has passed (checked every second at
// most) until ctx ends, then flushes what is left. Write errors go to
// onErr (may be nil).
func (r *Refusals) Run(ctx context.Context, onErr func(error)) {
	tick := time.NewTicker(min(r.interval(), time.Second))
	defer tick.Stop()
	flush := func(ctx context.Context) {
		if err := r.Flush(ctx); err != nil && onErr != nil {
			onErr(err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			flush(context.WithoutCancel(ctx))
			return
		case <-tick.C:
			if r.due() {
				flush(ctx)
			}
		}
	}
}
