package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Audit outcomes (deploy.AuditEvent.Outcome).
const (
	OutcomeSuccess   = "success"
	OutcomeFailure   = "failure"
	OutcomeThrottled = "throttled"
	OutcomeAlert     = "alert"
	OutcomeStarted   = "started" // an admin change about to be made
)

// secretKeyWords are substrings that mark a detail key as secret; such
// details are dropped, never recorded (security.md §3.5 "never record").
func secretKeyWords() []string {
	return []string{"passcode", "password", "passwd", "token", "secret", "authorization", "credential", "cookie", "privatekey", "private_key", "apikey", "api_key"}
}

// looksSecret reports whether a detail key names a secret, case-insensitively.
func looksSecret(key string) bool {
	k := strings.ToLower(key)
	for _, w := range secretKeyWords() {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// Auditor writes the append-only, hash-chained audit log through the store.
type Auditor struct {
	Store deploy.Store
	Now   func() time.Time // nil: time.Now
	// Forward, when set, gets every event once it is stored (with its
	// Seq and hashes), to copy it off the machine (a syslog or SIEM). It
	// must not block.
	Forward func(*deploy.AuditEvent)
}

// Record appends e. Details whose keys look secret (passcode, password,
// token, secret… in any case) are dropped and their keys listed, sorted,
// in details["redacted"]. A zero Time becomes now. The store fills Seq,
// PrevHash and Hash. An error means the event was not recorded: admin
// actions must then fail (security.md AU-4).
func (a *Auditor) Record(ctx context.Context, e *deploy.AuditEvent) error {
	if e == nil {
		return deploy.Errorf(deploy.KindInvalid, "audit event is missing")
	}
	if e.Action == "" {
		return deploy.Errorf(deploy.KindInvalid, "audit event action is empty")
	}
	if e.Outcome == "" {
		return deploy.Errorf(deploy.KindInvalid, "audit event %s: outcome is empty", e.Action)
	}
	if e.Time.IsZero() {
		if a.Now != nil {
			e.Time = a.Now()
		} else {
			e.Time = time.Now()
		}
	}
	if len(e.Details) > 0 {
		clean := make(map[string]string, len(e.Details))
		var dropped []string
		for k, v := range e.Details {
			if looksSecret(k) {
				dropped = append(dropped, k)
				continue
			}
			clean[k] = v
		}
		if len(dropped) > 0 {
			slices.Sort(dropped)
			clean["redacted"] = strings.Join(dropped, ",")
		}
		e.Details = clean
	}
	if err := a.Store.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("record audit event %s: %w", e.Action, err)
	}
	if a.Forward != nil {
		a.Forward(e)
	}
	return nil
}

// Verify checks a run of consecutive events as returned by the store: each
// Hash must equal deploy.AuditHash(PrevHash, event), each PrevHash the Hash
// before it, and Seq must rise by one (so a deleted entry is caught). The
// first event of the log (Seq 1) must have an empty PrevHash. The error
// names the first bad seq.
func Verify(events []*deploy.AuditEvent) error {
	for i, e := range events {
		if e == nil {
			return fmt.Errorf("audit log: entry %d is missing", i)
		}
		if i == 0 && e.Seq == 1 && e.PrevHash != "" {
			return fmt.Errorf("audit log: seq 1: first entry has a previous hash")
		}
		if i > 0 {
			prev := events[i-1]
			if e.Seq != prev.Seq+1 {
				return fmt.Errorf("audit log: seq %d follows seq %d: entries are missing", e.Seq, prev.Seq)
			}
			if e.PrevHash != prev.Hash {
				return fmt.Errorf("audit log: seq %d: previous hash does not match seq %d", e.Seq, prev.Seq)
			}
		}
		if got := deploy.AuditHash(e.PrevHash, e); got != e.Hash {
			return fmt.Errorf("audit log: seq %d: hash does not match its content (edited)", e.Seq)
		}
	}
	return nil
}

// VerifyAll reads the whole log from the store in pages and verifies it,
// returning how many entries it checked.
func (a *Auditor) VerifyAll(ctx context.Context) (int, error) {
	const page = 1000
	var last *deploy.AuditEvent
	n := 0
	for {
		events, err := a.Store.AuditEvents(ctx, seqOf(last), page)
		if err != nil {
			return n, fmt.Errorf("verify audit log: %w", err)
		}
		if len(events) == 0 {
			return n, nil
		}
		chain := events
		if last != nil {
			chain = append([]*deploy.AuditEvent{last}, events...)
		} else if events[0].Seq != 1 {
			return n, fmt.Errorf("audit log: seq %d is the first entry: entries 1–%d are missing", events[0].Seq, events[0].Seq-1)
		}
		if err := Verify(chain); err != nil {
			return n, err
		}
		n += len(events)
		last = events[len(events)-1]
		if len(events) < page {
			return n, nil
		}
	}
}

func seqOf(e *deploy.AuditEvent) int64 {
	if e == nil {
		return 0
	}
	return e.Seq
}
