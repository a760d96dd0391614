package server

import (
	"context"
	"net/http"
	"strconv"
	"sync"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/peer"
)

// chunkManifests computes each File blob's chunk manifest once, when a
// machine first asks, and keeps the last few in memory (a manifest is 65
// bytes per 4 MiB; a restart computes them again). Machines asking while it
// is computed wait for the one computation.
type chunkManifests struct {
	mu sync.Mutex
	m  map[string]*manifestCall // by blob SHA-256
}

type manifestCall struct {
	done chan struct{}
	m    *peer.Manifest
	err  error
}

// maxManifests bounds the manifests kept; past it the cache starts over.
const maxManifests = 64

func (c *chunkManifests) get(ctx context.Context, sum string, compute func(ctx context.Context) (*peer.Manifest, error)) (*peer.Manifest, error) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxManifests {
		c.m = map[string]*manifestCall{}
	}
	call, ok := c.m[sum]
	if !ok {
		call = &manifestCall{done: make(chan struct{})}
		c.m[sum] = call
		go func() {
			call.m, call.err = compute(ctx)
			if call.err != nil {
				c.mu.Lock()
				if c.m[sum] == call {
					delete(c.m, sum) // the next request tries again
				}
				c.mu.Unlock()
			}
			close(call.done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.m, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// peerVersion is scopedVersion for peer sharing, which only File content
// has.
func (s *Server) peerVersion(r *http.Request) (*deploy.ContentItem, *deploy.ContentVersion, error) {
	item, v, err := s.scopedVersion(r)
	if err != nil {
		return nil, nil, err
	}
	if item.Type != deploy.ContentFile {
		return nil, nil, deploy.Errorf(deploy.KindInvalid, "content %s is a %s: only File content is shared between peers", item.ID, item.Type)
	}
	return item, v, nil
}

// machineChunks answers GET /v1/content/{id}/{no}/chunks: the version's
// chunk manifest, to whoever may download the version.
func (s *Server) machineChunks(w http.ResponseWriter, r *http.Request) error {
	item, v, err := s.peerVersion(r)
	if err != nil {
		return err
	}
	m, err := s.chunks.get(s.life, v.SHA256, func(ctx context.Context) (*peer.Manifest, error) {
		rc, err := s.blobs.Open(ctx, v.SHA256)
		if err != nil {
			return nil, s.damagedBlob(ctx, err, item, v, v.SHA256)
		}
		defer rc.Close()
		m, err := peer.Build(ctx, rc, v.ContentSize, v.SHA256)
		if err == nil {
			// Build read the whole blob and checked its SHA-256: the
			// chunk (Range) requests that follow need no other check.
			s.checks.markWhole(v.SHA256, rc.ModTime())
		}
		return m, err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func peerKey(item *deploy.ContentItem, v *deploy.ContentVersion) string {
	return item.ID + ":" + strconv.Itoa(v.VersionNo)
}

// machineJoinPeers answers POST /v1/content/{id}/{no}/peers: it records
// the calling session's chunk server (at the address the request came
// from) and returns the other machines fetching the version on its
// subnet, with their tokens. Only sessions that may download the version
// get here, so only they learn the tokens.
func (s *Server) machineJoinPeers(w http.ResponseWriter, r *http.Request) error {
	item, v, err := s.peerVersion(r)
	if err != nil {
		return err
	}
	var j peer.Join
	if err := decodeJSON(w, r, &j); err != nil {
		return err
	}
	l, err := s.peers.Register(peerKey(item, v), sessionFrom(r.Context()).ID, s.clientIP(r), j)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

// machineLeavePeers answers DELETE /v1/content/{id}/{no}/peers.
func (s *Server) machineLeavePeers(w http.ResponseWriter, r *http.Request) error {
	item, v, err := s.peerVersion(r)
	if err != nil {
		return err
	}
	s.peers.Leave(peerKey(item, v), sessionFrom(r.Context()).ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
