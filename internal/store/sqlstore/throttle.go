package sqlstore

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// TakeThrottle records one hit at now under each limit's key when every
// key has room in the rolling window (now-window, now]; see deploy.Store.
// The keys' locks are taken in key order, so two takes sharing keys never
// deadlock; on SQLite the one writer already makes the take one step.
func (db *DB) TakeThrottle(ctx context.Context, now time.Time, window time.Duration, limits ...deploy.ThrottleLimit) (string, time.Duration, error) {
	if window <= 0 {
		return "", 0, deploy.Errorf(deploy.KindInvalid, "throttle window %s is not positive", window)
	}
	if len(limits) == 0 {
		return "", 0, deploy.Errorf(deploy.KindInvalid, "throttle take names no key")
	}
	ls := slices.Clone(limits)
	slices.SortFunc(ls, func(a, b deploy.ThrottleLimit) int { return strings.Compare(a.Key, b.Key) })
	locks := make([]Lock, len(ls))
	for i, l := range ls {
		if l.Key == "" {
			return "", 0, deploy.Errorf(deploy.KindInvalid, "throttle key is empty")
		}
		if l.Limit < 1 {
			return "", 0, deploy.Errorf(deploy.KindInvalid, "throttle limit %d of %q is not positive", l.Limit, l.Key)
		}
		if i > 0 && ls[i-1].Key == l.Key {
			return "", 0, deploy.Errorf(deploy.KindInvalid, "throttle key %q named twice", l.Key)
		}
		locks[i] = Lock{Space: LockThrottle, Key: l.Key}
	}
	at := micros(now)
	cutoff := micros(now.Add(-window))
	id := newID()
	var wait time.Duration
	err := db.writeLocked(ctx, locks, func(ctx context.Context, tx *Tx) error {
		wait = 0
		for _, l := range ls {
			if _, err := tx.ExecContext(ctx, `DELETE FROM throttle_hits WHERE key = ? AND at <= ?`, l.Key, cutoff); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM throttle_hits WHERE key = ?`, l.Key).Scan(&n); err != nil {
				return err
			}
			if n < l.Limit {
				continue
			}
			// Room comes when the hit that leaves the key one under its
			// limit has left the window.
			var oldest int64
			if err := tx.QueryRowContext(ctx, `SELECT at FROM throttle_hits WHERE key = ? ORDER BY at LIMIT 1 OFFSET ?`,
				l.Key, n-l.Limit).Scan(&oldest); err != nil {
				return err
			}
			wait = max(wait, fromMicros(oldest).Add(window).Sub(now), time.Microsecond)
		}
		if wait > 0 {
			return nil
		}
		for _, l := range ls {
			if _, err := tx.ExecContext(ctx, `INSERT INTO throttle_hits (key, id, at) VALUES (?, ?, ?)`, l.Key, id, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	if wait > 0 {
		return "", wait, nil
	}
	return id, 0, nil
}

// ReleaseThrottle removes the hits of id under keys.
func (db *DB) ReleaseThrottle(ctx context.Context, id string, keys ...string) error {
	if id == "" || len(keys) == 0 {
		return nil
	}
	return db.write(ctx, func(ctx context.Context, tx *Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `DELETE FROM throttle_hits WHERE key = ? AND id = ?`, k, id); err != nil {
				return err
			}
		}
		return nil
	})
}
