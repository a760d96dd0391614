//go:build !unix

package netlimit

// RaiseNoFile reports 0: the limit is unknown on this system.
func RaiseNoFile() uint64 { return 0 }
