// Package sqlite implements deploy.Store on an embedded SQLite database
// (pure Go, modernc.org/sqlite), the default for a single-machine server.
//
// Documents (content items and versions, step definitions, task sequences,
// devices, runs, sessions, audit entries) are stored as their lossless JSON
// next to the few columns queries need. The schema is created and upgraded by
// the numbered SQL files under migrations/, embedded in the binary; Open
// refuses a database written by a newer Imprint.
package sqlite
