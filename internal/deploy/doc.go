// Package deploy holds Imprint's domain types — content items, step
// definitions, task sequences, runs, sessions and audit events — the error
// kinds every layer speaks, and the few interfaces that have more than one
// real implementation (Store).
//
// The JSON shapes follow DeployR's exports (GUID ids, Unix-second dates,
// "guid:version" references, string-valued step settings) so that the same
// structs serve the API, the store and import/export.
package deploy
