package server

import (
	"context"
	"fmt"
	"time"

	"github.com/imprint-osd/imprint/internal/content"
)

// sweepGrace spares young blobs in a content store other servers may
// share (S3): a replica's upload may have stored its blob and not yet
// committed the row that references it. A Put of bytes already stored
// refreshes the blob's time, so a replica re-uploading an old blob makes
// it young again.
const sweepGrace = time.Hour

// sweepEvery is how often a server on a shared content store sweeps it
// again: what deletions spared as young is removed once it is old.
const sweepEvery = time.Hour

// sharedBlobs reports whether the content store may be shared with other
// server processes: anything but the local directory DATA/content.
func (s *Server) sharedBlobs() bool {
	blobs := s.blobs
	if m, ok := blobs.(*meteredBlobs); ok {
		blobs = m.Unwrap() // the store itself, not its counter
	}
	_, local := blobs.(*content.Store)
	return !local
}

// sweepBlobs removes blobs no content version references: those a rejected
// folder upload stored before it failed, or whatever a crash between a
// blob's rename and its row's commit left behind, and (on a shared store)
// those a deletion spared as young. It runs at start-up, before any upload
// of this server can be in flight, and every sweepEvery on a shared store,
// and returns how many it removed. In a shared store it spares blobs
// younger than sweepGrace, looking again just before each removal.
func (s *Server) sweepBlobs(ctx context.Context) (int, error) {
	var orphans []string
	shared := s.sharedBlobs()
	young := s.now().Add(-sweepGrace)
	err := s.blobs.Walk(ctx, func(b content.BlobInfo) error {
		if shared && b.ModTime.After(young) {
			return nil
		}
		used, err := s.store.BlobInUse(ctx, b.SHA256)
		if err != nil {
			return err
		}
		if !used {
			orphans = append(orphans, b.SHA256)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sweep blobs: %w", err)
	}
	// The walk took time: under the lock that holds this server's
	// uploads back, ask again whether each is unused and old.
	s.gc.Lock()
	defer s.gc.Unlock()
	n := 0
	for _, h := range orphans {
		if shared {
			used, err := s.store.BlobInUse(ctx, h)
			if err != nil {
				return n, fmt.Errorf("sweep blobs: %w", err)
			}
			if used || !s.oldBlob(ctx, h) {
				continue
			}
		}
		if err := s.blobs.Remove(ctx, h); err != nil {
			return n, fmt.Errorf("sweep blobs: %w", err)
		}
		n++
	}
	return n, nil
}

// oldBlob reports whether blob h is older than sweepGrace, so that no
// replica's upload of it can be between its Put and its row's commit.
func (s *Server) oldBlob(ctx context.Context, h string) bool {
	o, err := s.blobs.Open(ctx, h)
	if err != nil {
		return false
	}
	defer o.Close()
	return !o.ModTime().After(s.now().Add(-sweepGrace))
}

// sweepLater sweeps a shared content store every sweepEvery until ctx
// ends; a local one needs no sweep after start-up.
func (s *Server) sweepLater(ctx context.Context) {
	if !s.sharedBlobs() {
		return
	}
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.sweepBlobs(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("sweep content blobs", "err", err)
			} else if n > 0 {
				s.log.Info("removed content blobs no version references", "count", n)
			}
		}
	}
}
