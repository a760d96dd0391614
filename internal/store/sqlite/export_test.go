package sqlite

import "database/sql"

// SQL exposes the read pool to the black-box tests.
func (db *DB) SQL() *sql.DB { return db.rdb }

// GroupCommits returns how many commits carried more than one write, and
// how many writes they carried.
func (db *DB) GroupCommits() (commits, writes int64) {
	return db.w.batches.Load(), db.w.batched.Load()
}

// PreparedWrites returns the queries the writer keeps prepared.
func (db *DB) PreparedWrites() []string {
	db.w.mu.Lock()
	defer db.w.mu.Unlock()
	var qs []string
	for q, st := range db.w.stmts {
		if st != nil {
			qs = append(qs, q)
		}
	}
	return qs
}
