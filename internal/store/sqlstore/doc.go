// Package sqlstore implements deploy.Store once, on database/sql, for
// every SQL engine Imprint supports; the engine packages
// (internal/store/sqlite, internal/store/postgres) are thin adapters that
// open the connections, run their own migrations (sqlstore.Migrate over
// their embedded files) and supply a Dialect.
//
// Documents (content items and versions, step definitions, task sequences,
// devices, runs, sessions, audit entries) are stored as their lossless JSON
// next to the few columns queries need, with the same tables and columns
// on every engine. Times in columns are Unix microseconds (UTC). Queries
// are written once with '?' placeholders, and in the SQL both engines take
// (ON CONFLICT … DO NOTHING / DO UPDATE, LIMIT, coalesce); the dialect
// rebinds placeholders.
//
// What differs is behind Dialect:
//
//   - Write: how a write transaction runs. SQLite has one writer (a
//     goroutine that group-commits concurrent writes, each in a
//     savepoint); PostgreSQL runs SERIALIZABLE and retries a transaction
//     that lost a conflict, so any number of replicas may write.
//   - WriteLocked: a read-modify-write that must be one step across
//     processes (a setting, the audit chain head, a throttle count) holds
//     named locks. SQLite's one writer already is such a lock; PostgreSQL
//     takes transaction-scoped advisory locks. No SELECT … FOR UPDATE is
//     needed: the rows read may not exist yet.
//   - Rebind and IsUniqueViolation: placeholders, and which error is a
//     duplicate key (KindConflict).
//
// No query needs RETURNING or a last-insert id: every key is chosen by the
// store (GUIDs, the audit seq as head + 1, event seq as max + 1) inside
// the write that inserts it.
package sqlstore
