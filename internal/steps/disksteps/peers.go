package disksteps

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/multicast"
	"github.com/imprint-osd/imprint/internal/peer"
	"github.com/imprint-osd/imprint/internal/sequence"
)

// Peering is what peer sharing needs of the server (*client.Machine
// implements it).
type Peering interface {
	ContentInfo(ctx context.Context, id string, no int) (*client.ContentInfo, error)
	ChunkManifest(ctx context.Context, id string, no int) (*peer.Manifest, error)
	JoinPeers(ctx context.Context, id string, no int, j peer.Join) (peer.List, error)
	LeavePeers(ctx context.Context, id string, no int) error
	ContentChunk(ctx context.Context, info *client.ContentInfo, off, n int64) ([]byte, string, error)
}

var _ Peering = (*client.Machine)(nil)

// VarPeering is the task-sequence variable that turns peer sharing off
// for a run (DeployR's name and values: Peering=false; on by default).
const VarPeering = "Peering"

// PeeringOn reads VarPeering: on unless it is a false value.
func PeeringOn(vars *sequence.Vars) bool {
	v := strings.TrimSpace(vars.Value(VarPeering))
	if v == "" {
		return true
	}
	on, err := strconv.ParseBool(v)
	return err != nil || on
}

// openPeers starts peer sharing for File content ref: ok false means
// download from the server alone, for the reason why (also written to log).
func (d *Deps) openPeers(ctx context.Context, ref deploy.Ref, log io.Writer) (_ io.ReadCloser, _ *client.ContentInfo, ok bool, why string) {
	say := func(format string, args ...any) {
		why = fmt.Sprintf(format, args...)
		if log != nil {
			fmt.Fprintln(log, why)
		}
	}
	info, err := d.Peers.ContentInfo(ctx, ref.ID, ref.VersionNo)
	if err != nil {
		say("Peer sharing: %v; downloading from the server", err)
		return nil, nil, false, why
	}
	if info.Item.ID == "" {
		info.Item.ID = ref.ID
	}
	if info.Version.VersionNo == 0 {
		info.Version.VersionNo = ref.VersionNo
	}
	if info.Item.Type != deploy.ContentFile {
		return nil, nil, false, "" // only File content comes in chunks: nothing to say
	}
	m, err := d.Peers.ChunkManifest(ctx, ref.ID, ref.VersionNo)
	if err == nil {
		err = m.Check(info.Version.ContentSize, info.Version.SHA256)
	}
	if err != nil {
		say("Peer sharing: chunk manifest: %v; downloading from the server", err)
		return nil, nil, false, why
	}
	ps := &peerServer{p: d.Peers, ref: ref, info: info}
	r, err := peer.Open(ctx, peer.Config{Manifest: m, Server: ps, Listen: d.PeerListen, Log: func(format string, args ...any) {
		if log != nil {
			fmt.Fprintf(log, format+"\n", args...)
		}
	}})
	if err != nil {
		say("Peer sharing: %v; downloading from the server", err)
		return nil, nil, false, why
	}
	return &peerStream{Reader: r, ps: ps}, info, true, ""
}

// peerServer is peer.Server for one content version.
type peerServer struct {
	p     Peering
	ref   deploy.Ref
	info  *client.ContentInfo
	relay atomic.Int64 // bytes of chunks a branch relay served
}

func (s *peerServer) Join(ctx context.Context, j peer.Join) (peer.List, error) {
	return s.p.JoinPeers(ctx, s.ref.ID, s.ref.VersionNo, j)
}

func (s *peerServer) Leave(ctx context.Context) error {
	return s.p.LeavePeers(ctx, s.ref.ID, s.ref.VersionNo)
}

func (s *peerServer) Chunk(ctx context.Context, off, n int64) ([]byte, error) {
	b, source, err := s.p.ContentChunk(ctx, s.info, off, n)
	if err == nil && source == "relay" {
		s.relay.Add(int64(len(b)))
	}
	return b, err
}

// peerStream is an image read with peer sharing.
type peerStream struct {
	*peer.Reader
	ps *peerServer
}

// countedStream is an image read from the server (or a branch relay)
// alone; why is set when it could have come by multicast or from peers.
type countedStream struct {
	io.ReadCloser
	n   int64
	why string
}

func (c *countedStream) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

// source is where a countedStream's bytes came from.
func (c *countedStream) source() string {
	if s, ok := c.ReadCloser.(interface{ Source() string }); ok {
		return s.Source()
	}
	return "server"
}

// downloadOf says where the bytes of an image stream came from (nil for
// content the engine fetched before the step).
func downloadOf(rc io.Reader, info *client.ContentInfo) []deploy.Download {
	d := deploy.Download{Content: info.Item.ID + ":" + strconv.Itoa(info.Version.VersionNo), Name: info.Item.Name}
	switch r := rc.(type) {
	case *multicast.Reader:
		d.Multicast, d.Server = r.Multicast, r.Unicast
	case *peerStream:
		p, s, refused := r.Counts()
		relay := r.ps.relay.Load()
		d.Peers, d.Server, d.Relay, d.Refused = p, s-relay, relay, refused
	case *countedStream:
		if r.source() == "relay" {
			d.Relay = r.n
		} else {
			d.Server = r.n
		}
	default:
		return nil
	}
	d.Bytes = d.Server + d.Relay + d.Peers + d.Multicast
	return []deploy.Download{d}
}

// sourcesNote says where an image's bytes came from, for the step's
// message ("" for a plain download from the server).
func sourcesNote(rc io.Reader) string {
	switch r := rc.(type) {
	case *multicast.Reader:
		return fmt.Sprintf("; %d bytes by multicast, %d by unicast", r.Multicast, r.Unicast)
	case *peerStream:
		p, s, refused := r.Counts()
		note := fmt.Sprintf("; %d bytes from peers, %d from the server, %d served to peers", p, s, r.Served())
		if refused > 0 {
			note += fmt.Sprintf(", %d chunks from peers refused", refused)
		}
		return note
	case *countedStream:
		if r.why != "" {
			return "; from the server: " + r.why
		}
	}
	return ""
}

// lockedWriter serialises writes to w (a step's log) from several
// goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
