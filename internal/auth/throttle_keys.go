package auth

import (
	"container/list"
	"net/netip"
)

// keyTable is a map with least-recently-failed eviction.
type keyTable struct {
	m     map[string]*list.Element
	order *list.List // front = most recent; values are *keyState
}

func (k *keyTable) init() {
	k.m = map[string]*list.Element{}
	k.order = list.New()
}

func (k *keyTable) get(key string) *keyState {
	if el, ok := k.m[key]; ok {
		return el.Value.(*keyState)
	}
	return nil
}

// touch returns the state of key, creating it (and evicting the oldest
// key beyond limit) if needed, and marks it most recent.
func (k *keyTable) touch(key string, limit int) *keyState {
	if el, ok := k.m[key]; ok {
		k.order.MoveToFront(el)
		return el.Value.(*keyState)
	}
	for len(k.m) >= limit {
		old := k.order.Back()
		k.order.Remove(old)
		delete(k.m, old.Value.(*keyState).key)
	}
	e := &keyState{key: key}
	k.m[key] = k.order.PushFront(e)
	return e
}

// sourceKey normalises a source address: IPv4 (also v4-mapped) as is,
// IPv6 by its /64, since one host usually owns a whole /64. Anything else
// (a host:port or a name) is used verbatim after stripping a port.
func sourceKey(source string) string {
	if ap, err := netip.ParseAddrPort(source); err == nil {
		source = ap.Addr().String()
	}
	addr, err := netip.ParseAddr(source)
	if err != nil {
		return source
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}
