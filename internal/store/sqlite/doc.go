// Package sqlite implements deploy.Store on an embedded SQLite database
// (pure Go, modernc.org/sqlite), the default for a single-machine server:
// the shared SQL layer (internal/store/sqlstore) with SQLite's dialect.
//
// What is SQLite's own: the connection settings (WAL, full sync, foreign
// keys), one writing connection behind a goroutine that group-commits the
// writes waiting at the same time (writer.go), a read pool that keeps its
// connections, a checkpointer beside the writer, and the schema as the
// numbered SQL files under migrations/, embedded in the binary; Open
// refuses a database written by a newer Imprint.
package sqlite
