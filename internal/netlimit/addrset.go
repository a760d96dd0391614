package netlimit

import (
	"net/netip"
	"sync"
	"time"
)

// AddrSet holds addresses until a deadline each: the addresses that
// authenticated recently. It is bounded: when full, expired entries are
// dropped, and if none has expired a new address is not added (the
// addresses already vouched for keep their place).
type AddrSet struct {
	max int

	mu    sync.Mutex
	until map[netip.Addr]time.Time
}

// NewAddrSet returns a set of at most max addresses.
func NewAddrSet(max int) *AddrSet {
	return &AddrSet{max: max, until: map[netip.Addr]time.Time{}}
}

// Add keeps a until t (or later, if it was already kept longer).
func (s *AddrSet) Add(a netip.Addr, t time.Time) {
	if s == nil || !a.IsValid() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.until[a]; ok {
		if t.After(old) {
			s.until[a] = t
		}
		return
	}
	if len(s.until) >= s.max {
		now := time.Now()
		for k, u := range s.until {
			if !u.After(now) {
				delete(s.until, k)
			}
		}
		if len(s.until) >= s.max {
			return
		}
	}
	s.until[a] = t
}

// Has reports whether a is kept at time now.
func (s *AddrSet) Has(a netip.Addr, now time.Time) bool {
	if s == nil || !a.IsValid() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.until[a]
	return ok && u.After(now)
}
