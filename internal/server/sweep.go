package server

import (
	"context"
	"fmt"

	"github.com/imprint-osd/imprint/internal/content"
)

// sweepBlobs removes blobs no content version references: those a rejected
// folder upload stored before it failed, or whatever a crash between a
// blob's rename and its row's commit left behind. It runs at start-up,
// before any upload can be in flight, and returns how many it removed.
func (s *Server) sweepBlobs(ctx context.Context) (int, error) {
	var orphans []string
	err := s.blobs.Walk(ctx, func(b content.BlobInfo) error {
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
