// Package storetest is the one conformance suite for deploy.Store
// implementations. Each implementation's tests call Run with a function that
// opens a fresh, empty store:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) deploy.Store { return openTestDB(t) })
//	}
//
// The suite reads the DeployR compat corpus from ../../../../shared/compat/deployr,
// relative to the calling package's directory (internal/store/<impl>).
package storetest
