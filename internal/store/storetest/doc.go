// Package storetest is the one conformance suite for deploy.Store
// implementations. Each implementation's tests call Run with a function that
// opens a fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) deploy.Store { return openTestDB(t) })
//	}
//
// The suite reads the DeployR compat corpus from CompatDir
// (../../../../shared/compat/deployr), relative to the calling package's
// directory (internal/store/<impl>). Its subtests run in parallel, each on
// its own store.
//
// RunShared is the second part, for a store that several processes (server
// replicas) may open on one database: it opens two stores on the same
// database and checks that concurrent settings updates lose nothing and
// concurrent audit appends make one verifiable chain.
//
// Beyond the comments on deploy.Store, the suite fixes these behaviours:
//
//   - Documents keep every JSON field (unknown ones too); times come back in
//     UTC. Tests use microsecond-precision times, what Postgres keeps.
//   - Empty IDs are filled with lowercase GUIDs, written back to the argument.
//   - AddContentVersion: VersionNo 0 means max+1 (so a deleted highest number
//     is reused); a taken number or version ID is KindConflict; a negative
//     number or a hash that is not lowercase hex SHA-256 is KindInvalid.
//     Blob references are the version's SHA256 for File items and every
//     manifest file's SHA256 (a Folder's own SHA256 and a URL's expected hash
//     are not blobs).
//   - UpdateContentVersion changes only status, description, application and
//     driver fields and tags; a different non-empty SHA256 is KindInvalid.
//   - The store owns Run.UpdatedAt: CreateRun, UpdateRun and AppendRunEvent
//     set it to the store clock; MarkLostRuns compares it strictly (<).
//   - Runs orders by StartedAt descending; a negative Limit is KindInvalid.
//   - DeleteSetting of an unset key succeeds; Setting of one is KindNotFound.
//   - RevokeSessions leaves sessions already revoked alone (and uncounted).
//   - AppendAudit stores Time in UTC rounded to the microsecond (as
//     deploy.AuditHash sees it) and sets now for a zero Time; an empty Action
//     is KindInvalid; AuditEvents with limit 0 returns everything.
package storetest
