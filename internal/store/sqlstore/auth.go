package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// CreateSession stores a new session. TokenHash is required and unique; an
// empty ID is generated; zero CreatedAt and LastUsedAt become now.
func (db *DB) CreateSession(ctx context.Context, s *deploy.Session) error {
	if s == nil {
		return deploy.Errorf(deploy.KindInvalid, "session is missing")
	}
	if len(s.TokenHash) == 0 {
		return deploy.Errorf(deploy.KindInvalid, "session token hash is empty")
	}
	if s.ID == "" {
		s.ID = newID()
	}
	now := db.now()
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	if s.LastUsedAt.IsZero() {
		s.LastUsedAt = s.CreatedAt
	}
	return db.write(ctx, func(ctx context.Context, tx *Tx) error {
		found, err := exists(ctx, tx, `SELECT 1 FROM sessions WHERE id = ?`, s.ID)
		if err != nil {
			return err
		}
		if found {
			return deploy.Errorf(deploy.KindConflict, "session %s already exists", s.ID)
		}
		if found, err = exists(ctx, tx, `SELECT 1 FROM sessions WHERE token_hash = ?`, s.TokenHash); err != nil {
			return err
		}
		if found {
			return deploy.Errorf(deploy.KindConflict, "a session with this token hash already exists")
		}
		return putSession(ctx, tx, s)
	})
}

// SessionByTokenHash returns the session whose token hashes to hash, even
// when it is expired or revoked: the caller decides.
func (db *DB) SessionByTokenHash(ctx context.Context, hash []byte) (*deploy.Session, error) {
	// One statement, prepared once: every machine request asks it.
	var stored []byte
	var doc string
	err := db.hot.session.QueryRowContext(ctx, hash).Scan(&stored, &doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, deploy.Errorf(deploy.KindNotFound, "session not found")
	}
	if err != nil {
		return nil, db.wrapDB(err)
	}
	s := new(deploy.Session)
	if err := decode(doc, s); err != nil {
		return nil, db.wrapDB(err)
	}
	s.TokenHash = stored
	return s, nil
}

// UpdateSession replaces a stored session. An empty TokenHash keeps the
// stored one.
func (db *DB) UpdateSession(ctx context.Context, s *deploy.Session) error {
	if s == nil {
		return deploy.Errorf(deploy.KindInvalid, "session is missing")
	}
	return db.write(ctx, func(ctx context.Context, tx *Tx) error {
		ss, err := querySessions(ctx, tx, `WHERE id = ?`, s.ID)
		if err != nil {
			return err
		}
		if len(ss) == 0 {
			return errNotFound("session", s.ID)
		}
		if len(s.TokenHash) == 0 {
			s.TokenHash = ss[0].TokenHash
		}
		if found, err := exists(ctx, tx, `SELECT 1 FROM sessions WHERE token_hash = ? AND id <> ?`, s.TokenHash, s.ID); err != nil {
			return err
		} else if found {
			return deploy.Errorf(deploy.KindConflict, "another session has this token hash")
		}
		return putSession(ctx, tx, s)
	})
}

// Sessions returns every stored session, oldest first.
func (db *DB) Sessions(ctx context.Context) ([]*deploy.Session, error) {
	var ss []*deploy.Session
	err := db.read(ctx, func(tx *Tx) error {
		var err error
		ss, err = querySessions(ctx, tx, `ORDER BY created_at, id`)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ss, nil
}

// RevokeSessions sets RevokedAt (at, or now when zero) on every session not
// yet revoked that matches all non-zero fields of f, and returns how many.
func (db *DB) RevokeSessions(ctx context.Context, f deploy.SessionFilter, at time.Time) (int, error) {
	if at.IsZero() {
		at = db.now()
	}
	at = at.UTC()
	where := []string{"revoked_at IS NULL"}
	var args []any
	if f.ID != "" {
		where, args = append(where, "id = ?"), append(args, f.ID)
	}
	if f.DeviceID != "" {
		where, args = append(where, "device_id = ?"), append(args, f.DeviceID)
	}
	if f.Method != "" {
		where, args = append(where, "method = ?"), append(args, f.Method)
	}
	if f.Generation != 0 {
		where, args = append(where, "generation = ?"), append(args, f.Generation)
	}
	n := 0
	err := db.write(ctx, func(ctx context.Context, tx *Tx) error {
		ss, err := querySessions(ctx, tx, "WHERE "+strings.Join(where, " AND "), args...)
		if err != nil {
			return err
		}
		for _, s := range ss {
			t := at
			s.RevokedAt = &t
			if err := putSession(ctx, tx, s); err != nil {
				return err
			}
		}
		n = len(ss)
		return nil
	})
	return n, err
}

// querySessions selects sessions with the given WHERE/ORDER tail.
func querySessions(ctx context.Context, tx *Tx, tail string, args ...any) ([]*deploy.Session, error) {
	rows, err := tx.QueryContext(ctx, `SELECT token_hash, doc FROM sessions `+tail, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ss := []*deploy.Session{}
	for rows.Next() {
		var hash []byte
		var doc string
		if err := rows.Scan(&hash, &doc); err != nil {
			return nil, err
		}
		s := new(deploy.Session)
		if err := decode(doc, s); err != nil {
			return nil, err
		}
		s.TokenHash = hash
		ss = append(ss, s)
	}
	return ss, rows.Err()
}

func putSession(ctx context.Context, tx *Tx, s *deploy.Session) error {
	s.CreatedAt, s.LastUsedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.LastUsedAt.UTC(), s.ExpiresAt.UTC()
	var revoked *int64
	if s.RevokedAt != nil {
		t := s.RevokedAt.UTC()
		s.RevokedAt = &t
		us := micros(t)
		revoked = &us
	}
	doc, err := encode(s)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO sessions
		(id, token_hash, method, device_id, generation, created_at, expires_at, revoked_at, doc)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash, method = excluded.method,
			device_id = excluded.device_id, generation = excluded.generation, created_at = excluded.created_at,
			expires_at = excluded.expires_at, revoked_at = excluded.revoked_at, doc = excluded.doc`,
		s.ID, s.TokenHash, s.Method, s.DeviceID, s.Generation, micros(s.CreatedAt), micros(s.ExpiresAt), revoked, doc)
	return err
}

// AppendAudit appends e to the hash chain: it sets Seq, PrevHash (the
// previous entry's Hash, "" for the first) and Hash = deploy.AuditHash.
// A zero Time becomes now; times are kept in UTC at microsecond precision,
// as the hash sees them. Appends from every process hold the audit lock,
// so each reads the head the previous one wrote: one chain, no forks.
func (db *DB) AppendAudit(ctx context.Context, e *deploy.AuditEvent) error {
	if e == nil {
		return deploy.Errorf(deploy.KindInvalid, "audit event is missing")
	}
	if e.Action == "" {
		return deploy.Errorf(deploy.KindInvalid, "audit event action is empty")
	}
	return db.writeLocked(ctx, []Lock{{Space: LockAudit, Key: "chain"}}, func(ctx context.Context, tx *Tx) error {
		s := *e
		var last int64
		var prev string
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if s.Time.IsZero() {
			s.Time = db.now()
		}
		s.Time = s.Time.UTC().Round(time.Microsecond)
		s.Seq = last + 1
		s.PrevHash = prev
		s.Hash = deploy.AuditHash(prev, &s)
		doc, err := encode(&s)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit (seq, doc, hash) VALUES (?, ?, ?)`, s.Seq, doc, s.Hash); err != nil {
			return err
		}
		*e = s
		return nil
	})
}

// AuditEvents returns up to limit entries with Seq > afterSeq in order;
// limit 0 means all.
func (db *DB) AuditEvents(ctx context.Context, afterSeq int64, limit int) ([]*deploy.AuditEvent, error) {
	if limit < 0 {
		return nil, deploy.Errorf(deploy.KindInvalid, "audit limit %d is negative", limit)
	}
	q := `SELECT doc FROM audit WHERE seq > ? ORDER BY seq`
	args := []any{afterSeq}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	var events []*deploy.AuditEvent
	err := db.read(ctx, func(tx *Tx) (err error) {
		events, err = queryDocs[deploy.AuditEvent](ctx, tx, q, args...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return events, nil
}
