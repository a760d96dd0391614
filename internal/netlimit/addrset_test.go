package netlimit

import (
	"net/netip"
	"testing"
	"time"
)

func TestAddrSetExpiresAndStaysBounded(t *testing.T) {
	now := time.Now()
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	s := NewAddrSet(2)
	s.Add(a, now.Add(-time.Second)) // already expired
	s.Add(b, now.Add(time.Hour))
	s.Add(b, now.Add(time.Minute)) // an earlier deadline does not shorten it
	for _, tc := range []struct {
		addr netip.Addr
		at   time.Time
		want bool
	}{
		{a, now, false},
		{b, now.Add(30 * time.Minute), true},
		{b, now.Add(2 * time.Hour), false},
		{netip.Addr{}, now, false},
	} {
		if got := s.Has(tc.addr, tc.at); got != tc.want {
			t.Errorf("Has(%v, +%v) = %v, want %v", tc.addr, tc.at.Sub(now), got, tc.want)
		}
	}
	s.Add(c, now.Add(time.Hour)) // full: the expired a makes room
	if !s.Has(c, now) {
		t.Error("no room made from an expired entry")
	}
	s.Add(a, now.Add(time.Hour)) // full of live entries: not added
	if s.Has(a, now) || !s.Has(b, now) || !s.Has(c, now) {
		t.Error("a full set dropped a live address or took a new one")
	}
	var none *AddrSet
	none.Add(a, now.Add(time.Hour))
	if none.Has(a, now) {
		t.Error("nil set has an address")
	}
}
