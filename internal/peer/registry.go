package peer

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// Peer is one machine serving chunks of a content version: where its chunk
// server listens and the token it asks of those who fetch.
type Peer struct {
	Addr  string `json:"addr"` // host:port; the host is the address the server saw
	Token string `json:"token"`
}

// Join is a machine's registration (the body of POST
// /v1/content/{id}/{no}/peers): the port of its chunk server and the token
// it will ask for. The host is not the machine's to say: the server takes
// the address the request came from, so no one can point others at a third
// host.
type Join struct {
	Port  int    `json:"port"`
	Token string `json:"token"`
}

// Validate checks a registration.
func (j Join) Validate() error {
	if j.Port < 1 || j.Port > 65535 {
		return deploy.Errorf(deploy.KindInvalid, "port %d is not a TCP port", j.Port)
	}
	if len(j.Token) < 32 || len(j.Token) > 128 {
		return deploy.Errorf(deploy.KindInvalid, "token must be 32 to 128 characters")
	}
	return nil
}

// List is the server's answer to a registration: the machine's own entry
// as the server recorded it and the others on its subnet.
type List struct {
	Self  Peer   `json:"self"`
	Peers []Peer `json:"peers"`
}

// DefaultTTL is how long a registration lasts unless renewed (the agent
// renews every few seconds while it downloads).
const DefaultTTL = 30 * time.Second

// maxPerVersion bounds the peers one content version may have registered,
// so a flood of registrations cannot grow the server's memory.
const maxPerVersion = 1024

// Registry is the server's in-memory list of machines downloading each
// content version. A restart forgets it: machines then re-register on
// their next renewal.
type Registry struct {
	TTL time.Duration
	Now func() time.Time

	mu   sync.Mutex
	sets map[string]map[string]*entry // content key -> member -> entry
}

type entry struct {
	peer    Peer
	ip      netip.Addr
	expires time.Time
}

func (r *Registry) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Register records member (a session) as serving content key from ip and
// returns it with the other live members on the same subnet (/24 for IPv4,
// /64 for IPv6): the server cannot know the real mask, and a peer further
// away is just slower, never unsafe.
func (r *Registry) Register(key, member, ip string, j Join) (List, error) {
	if err := j.Validate(); err != nil {
		return List{}, err
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return List{}, deploy.Errorf(deploy.KindInvalid, "peer address %q: %v", ip, err)
	}
	addr = addr.Unmap()
	ttl := r.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sets == nil {
		r.sets = map[string]map[string]*entry{}
	}
	r.expire(now)
	set := r.sets[key]
	if set == nil {
		set = map[string]*entry{}
		r.sets[key] = set
	}
	if _, ok := set[member]; !ok && len(set) >= maxPerVersion {
		return List{}, deploy.Errorf(deploy.KindThrottled, "content %s has %d peers registered already", key, len(set))
	}
	self := &entry{peer: Peer{Addr: net.JoinHostPort(addr.String(), strconv.Itoa(j.Port)), Token: j.Token}, ip: addr, expires: now.Add(ttl)}
	set[member] = self
	out := List{Self: self.peer, Peers: []Peer{}}
	mine := subnet(addr)
	for m, e := range set {
		if m != member && subnet(e.ip) == mine {
			out.Peers = append(out.Peers, e.peer)
		}
	}
	slices.SortFunc(out.Peers, func(a, b Peer) int { return compareAddr(a.Addr, b.Addr) })
	return out, nil
}

// Leave removes member's registration for key.
func (r *Registry) Leave(key, member string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.sets[key], member)
	if len(r.sets[key]) == 0 {
		delete(r.sets, key)
	}
}

// Count is how many machines are registered for key.
func (r *Registry) Count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire(r.now())
	return len(r.sets[key])
}

func (r *Registry) expire(now time.Time) {
	for k, set := range r.sets {
		for m, e := range set {
			if now.After(e.expires) {
				delete(set, m)
			}
		}
		if len(set) == 0 {
			delete(r.sets, k)
		}
	}
}

func subnet(a netip.Addr) netip.Prefix {
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}

// compareAddr orders host:port strings by address, then port, so every
// machine sorts a peer list the same way.
func compareAddr(a, b string) int {
	pa, ea := netip.ParseAddrPort(a)
	pb, eb := netip.ParseAddrPort(b)
	if ea != nil || eb != nil {
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	}
	return pa.Compare(pb)
}
