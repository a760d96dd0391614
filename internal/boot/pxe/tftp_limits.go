package pxe

import (
	"container/list"
	"context"
	"net/netip"
	"sync"
)

// transferTable counts the running TFTP transfers, in all and per source
// address, and keeps those that have sent their first packet but not heard
// back from their client yet, in the order they sent it, so the oldest
// can make room for a new one. A transfer still starting cannot be
// displaced: its client has not had a chance to answer.
type transferTable struct {
	mu      sync.Mutex
	max     int
	perAddr int
	n       int
	byAddr  map[netip.Addr]int
	unheard *list.List // of *slot, oldest first
}

// slot is one admitted transfer.
type slot struct {
	addr     netip.Addr
	cancel   context.CancelFunc // ends the transfer when it is displaced
	elem     *list.Element      // in unheard from its first packet until the client answers
	heard    bool
	released bool
	done     chan struct{} // closed once the transfer's socket is closed
}

func newTransferTable(max, perAddr int) *transferTable {
	return &transferTable{max: max, perAddr: perAddr, byAddr: map[netip.Addr]int{}, unheard: list.New()}
}

// acquire admits a transfer from addr, or returns why not: the message of
// the ERROR packet the client gets, kept short so that a refusal sent to
// a spoofed source is no bigger than a request. A full table displaces its
// oldest transfer that has not heard from its client, and the new
// transfer must wait for the returned channel (the old one's socket
// closed) before it opens its own, so sockets never outnumber max. The
// caller must set the new slot's cancel before anything can displace it
// (acquire is called from the one goroutine that reads requests). The
// wait is one step only: a transfer waiting for its place is still
// starting, so nothing displaces it in turn.
func (t *transferTable) acquire(addr netip.Addr) (*slot, <-chan struct{}, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byAddr[addr] >= t.perAddr {
		return nil, nil, "too many transfers from this address"
	}
	var wait <-chan struct{}
	if t.n >= t.max {
		front := t.unheard.Front()
		if front == nil {
			return nil, nil, "server busy, try later"
		}
		old := front.Value.(*slot)
		t.releaseLocked(old)
		old.cancel()
		wait = old.done
	}
	s := &slot{addr: addr, done: make(chan struct{})}
	t.n++
	t.byAddr[addr]++
	return s, wait, ""
}

// sent records that the transfer of s sent its first packet: from now
// until its client answers, it may be displaced.
func (t *transferTable) sent(s *slot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !s.released && !s.heard && s.elem == nil {
		s.elem = t.unheard.PushBack(s)
	}
}

// confirm records that the client of s acknowledged a packet: its
// address is real, and the transfer can no longer be displaced.
func (t *transferTable) confirm(s *slot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.heard = true
	if s.elem != nil {
		t.unheard.Remove(s.elem)
		s.elem = nil
	}
}

// release frees the place of a transfer that ended.
func (t *transferTable) release(s *slot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.releaseLocked(s)
}

func (t *transferTable) releaseLocked(s *slot) {
	if s.released {
		return
	}
	s.released = true
	if s.elem != nil {
		t.unheard.Remove(s.elem)
		s.elem = nil
	}
	t.n--
	if t.byAddr[s.addr]--; t.byAddr[s.addr] <= 0 {
		delete(t.byAddr, s.addr)
	}
}
