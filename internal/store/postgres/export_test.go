package postgres

import "database/sql"

// SQL exposes the underlying handle to the black-box tests.
func (db *DB) SQL() *sql.DB { return db.sdb }
