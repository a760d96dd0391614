package server

import (
	"context"
	"fmt"
	"time"

	"github.com/imprint-osd/imprint/internal/content"
)

// sweepGrace spares young blobs in a content store other servers may
// share (S3): a replica's upload may have stored its blob and not yet
// committed the row that references it.
const sweepGrace = time.Hour

// sweepBlobs removes blobs no content version references: those a rejected
// folder upload stored before it failed, or whatever a crash between a
// blob's rename and its row's commit left behind. It runs at start-up,
// before any upload of this server can be in flight, and returns how many
// it removed. In a shared store (anything but the local directory) it
// spares blobs younger than sweepGrace.
func (s *Server) sweepBlobs(ctx context.Context) (int, error) {
	var orphans []string
	_, local := s.blobs.(*content.Store)
	young := s.now().Add(-sweepGrace)
	err := s.blobs.Walk(ctx, func(b content.BlobInfo) error {
		if !local && b.ModTime.After(young) {
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
	for _, h := range orphans {
		if err := s.blobs.Remove(ctx, h); err != nil {
			return 0, fmt.Errorf("sweep blobs: %w", err)
		}
	}
	return len(orphans), nil
}
