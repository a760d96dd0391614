package server

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/imprint-osd/imprint/internal/boot"
)

// grubWatch notices the Secure Boot chain stalling at GRUB: a machine that
// fetched the signed GRUB over TFTP and then never asked for its config.
// Debian 12's signed GRUB takes its TFTP server from the site DHCP's
// next-server only, so on a site whose DHCP does not name Imprint it waits
// forever; the log is the only place an operator can learn why.
type grubWatch struct {
	log   *slog.Logger
	after time.Duration // how long GRUB may take to ask
	now   func() time.Time

	mu      sync.Mutex
	fetched map[string]time.Time // by client address
	warned  time.Time
}

func newGrubWatch(log *slog.Logger) *grubWatch {
	return &grubWatch{log: log, after: time.Minute, now: time.Now, fetched: map[string]time.Time{}}
}

// wrap observes the TFTP reads that open serves.
func (w *grubWatch) wrap(open func(ctx context.Context, remote, name string) (io.ReadCloser, int64, error)) func(ctx context.Context, remote, name string) (io.ReadCloser, int64, error) {
	return func(ctx context.Context, remote, name string) (io.ReadCloser, int64, error) {
		w.saw(remote, name)
		return open(ctx, remote, name)
	}
}

func (w *grubWatch) saw(remote, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch name {
	case boot.TFTPGrub:
		if len(w.fetched) < 4096 {
			w.fetched[remote] = w.now()
		}
	case boot.TFTPGrubBootstrap:
		delete(w.fetched, remote)
	}
}

// check warns (at most once an hour) about machines whose GRUB has not
// asked for its config in time, and forgets them.
func (w *grubWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	var stuck []string
	for remote, at := range w.fetched {
		if now.Sub(at) >= w.after {
			stuck = append(stuck, remote)
			delete(w.fetched, remote)
		}
	}
	if len(stuck) == 0 || now.Sub(w.warned) < time.Hour {
		return
	}
	w.warned = now
	w.log.Warn("the signed GRUB was fetched over TFTP but never asked for grub/grub.cfg: the site DHCP server must name this server as next-server (Debian 12's signed GRUB ignores the proxyDHCP offer), or turn Secure Boot mode off with `imprint security set secure-boot off` so machines get iPXE",
		"machines", stuck)
}

// run checks every 10 s until ctx ends.
func (w *grubWatch) run(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.check()
		}
	}
}
