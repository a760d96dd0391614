//go:build !linux

package pe

import (
	"context"
	"io"
)

// BringUp configures the network; only on Linux.
func BringUp(ctx context.Context, cfg NetConfig, log io.Writer) (*Lease, error) {
	return nil, ErrNotLinux
}
