// Package deployrjson reads and writes DeployR's export files: task
// sequences, step definitions and content items as DeployR's
// Export-DeployR* cmdlets write them (one compact JSON object per file).
//
// Decoding is strict about what Imprint models and lenient about the rest:
// every known field must have DeployR's JSON type (a wrong one is reported
// with its path, e.g. "versions[0].steps[3].enabled: want boolean, got
// string"), and fields that are not nullable in Go must not be null, since
// accepting them would silently change the export. Unknown fields are kept
// and written back, so decode followed by Encode gives the same JSON value.
// A UTF-8 byte-order mark is accepted; invalid UTF-8 is not.
//
// A file holds one document. A JSON array is rejected: DeployR exports
// never contain one, and importing several documents is the caller's loop.
package deployrjson
