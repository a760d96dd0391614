package sqlstore

import (
	"context"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// CreateUser stores a new account; zero CreatedAt and UpdatedAt become now.
func (db *DB) CreateUser(ctx context.Context, u *deploy.User) error {
	if err := u.Check(); err != nil {
		return err
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = db.now()
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return db.write(ctx, func(ctx context.Context, tx *Tx) error {
		found, err := exists(ctx, tx, `SELECT 1 FROM users WHERE name = ?`, u.Name)
		if err != nil {
			return err
		}
		if found {
			return deploy.Errorf(deploy.KindConflict, "user %s already exists", u.Name)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO users (name, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
			u.Name, string(u.Role), u.PasswordHash, micros(u.CreatedAt), micros(u.UpdatedAt))
		return err
	})
}

// UpdateUser replaces the role and password hash of an existing account;
// a zero UpdatedAt becomes now. CreatedAt is kept.
func (db *DB) UpdateUser(ctx context.Context, u *deploy.User) error {
	if err := u.Check(); err != nil {
		return err
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = db.now()
	}
	u.UpdatedAt = u.UpdatedAt.UTC()
	return db.write(ctx, func(ctx context.Context, tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET role = ?, password_hash = ?, updated_at = ? WHERE name = ?`,
			string(u.Role), u.PasswordHash, micros(u.UpdatedAt), u.Name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return deploy.Errorf(deploy.KindNotFound, "user %s not found", u.Name)
		}
		return nil
	})
}

// User returns one account.
func (db *DB) User(ctx context.Context, name string) (*deploy.User, error) {
	var u *deploy.User
	err := db.read(ctx, func(tx *Tx) error {
		us, err := queryUsers(ctx, tx, `WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if len(us) == 0 {
			return deploy.Errorf(deploy.KindNotFound, "user %s not found", name)
		}
		u = us[0]
		return nil
	})
	return u, err
}

// Users returns every account, by name.
func (db *DB) Users(ctx context.Context) ([]*deploy.User, error) {
	var us []*deploy.User
	err := db.read(ctx, func(tx *Tx) error {
		var err error
		us, err = queryUsers(ctx, tx, `ORDER BY name`)
		return err
	})
	return us, err
}

// DeleteUser removes an account.
func (db *DB) DeleteUser(ctx context.Context, name string) error {
	return db.write(ctx, func(ctx context.Context, tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return deploy.Errorf(deploy.KindNotFound, "user %s not found", name)
		}
		return nil
	})
}

func queryUsers(ctx context.Context, tx *Tx, tail string, args ...any) ([]*deploy.User, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name, role, password_hash, created_at, updated_at FROM users `+tail, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	us := []*deploy.User{}
	for rows.Next() {
		var u deploy.User
		var role string
		var created, updated int64
		if err := rows.Scan(&u.Name, &role, &u.PasswordHash, &created, &updated); err != nil {
			return nil, err
		}
		u.Role, u.CreatedAt, u.UpdatedAt = deploy.Role(role), fromMicros(created), fromMicros(updated)
		us = append(us, &u)
	}
	return us, rows.Err()
}
