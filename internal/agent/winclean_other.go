//go:build !windows

package agent

// RemoveAfterExit deletes dir now: outside Windows a running executable
// can be deleted.
func RemoveAfterExit(dir string) error { return removeTree(dir) }

// defaultCleaner: outside Windows nothing is staged to clean up by
// default (the deployed Linux's resume unit is removed by its Resumer).
func defaultCleaner(string) Cleaner { return nil }
