package deploy

import "context"

// RunWatcher is implemented by a Store that several server processes may
// share (the PostgreSQL store): it tells a process of the run changes
// every process on the database commits, so that a live view on one
// replica sees the events a machine reports to another. A store only one
// process opens (SQLite) does not implement it; the server then hears of
// its own writes only, which are all there are.
type RunWatcher interface {
	// WatchRuns listens for committed run changes (a run created or
	// replaced, events appended, runs marked lost) until ctx ends or the
	// connection fails, and returns why. It calls changed("") once it is
	// listening, then changed(runID) for each change, from one goroutine.
	// Changes committed while no WatchRuns listens are not replayed: a
	// caller that listens again must treat its changed("") as "anything
	// may have changed".
	WatchRuns(ctx context.Context, changed func(runID string)) error
}
