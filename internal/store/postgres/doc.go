// Package postgres implements deploy.Store on PostgreSQL (pgx v5 through
// database/sql), for sites that run several server replicas or already
// operate PostgreSQL: the shared SQL layer (internal/store/sqlstore) with
// PostgreSQL's dialect. It passes the same conformance suite (storetest)
// as the embedded SQLite store and keeps the same tables and documents.
//
// It uses pgx's database/sql driver rather than pgxpool so that the one
// SQL layer serves both engines; nothing here needs pgx's native-only
// features.
//
// Concurrency, with any number of processes on one database:
//
//   - ordinary writes run SERIALIZABLE and are retried on a serialization
//     failure or deadlock, so a check-then-write (a version number, a
//     duplicate id) behaves as under SQLite's single writer;
//   - settings change only under a transaction-scoped advisory lock on the
//     key (UpdateSetting, PutSetting, DeleteSetting), so a read-modify-write
//     from two replicas loses no update;
//   - audit appends hold one advisory lock for the chain, so the chain head
//     is read and extended by one transaction at a time: one chain, no forks.
//
// The schema is created and upgraded by the numbered SQL files under
// migrations/, embedded in the binary, under a session advisory lock so
// that replicas starting together apply each migration once; Open refuses a
// database written by a newer Imprint.
package postgres
