package server

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/imprint-osd/imprint/internal/boot"
	"github.com/imprint-osd/imprint/internal/boot/pxe"
)

// startPXE binds the proxyDHCP + TFTP service of --pxe (UDP 67, 4011 and
// 69) and runs it in g until ctx ends. Binding errors (a port in use, no
// privilege) are returned at once.
func (s *Server) startPXE(ctx context.Context, g *errgroup.Group) error {
	port, err := s.bootPort()
	if err != nil {
		return fmt.Errorf("pxe: %w", err)
	}
	cfg := pxe.Config{
		Interface: s.cfg.PXEInterface,
		BootPort:  port,
		IPXEDir:   boot.DefaultConfig().IPXEDir, // the directory the boot port serves /ipxe/ from
		Log:       s.log.With("component", "pxe"),
	}
	watch := newGrubWatch(s.log.With("component", "pxe"))
	cfg.Open = s.metrics.tftp(watch.wrap(s.bootH.TFTPOpen))
	g.Go(func() error { watch.run(ctx); return nil })
	var warned atomic.Bool
	cfg.SecureBoot = func() bool { return s.secureBoot(ctx, &warned) }
	if s.cfg.PXEServerIP != "" {
		cfg.ServerIP = net.ParseIP(s.cfg.PXEServerIP) // validated by Config.Validate
	}
	svc, err := pxe.Listen(cfg)
	if err != nil {
		return err
	}
	g.Go(func() error { return svc.Serve(ctx) })
	return nil
}

// bootPort is the boot port's TCP port as machines reach it: the port of
// --boot-url when set, else the bound one.
func (s *Server) bootPort() (int, error) {
	if s.cfg.BootURL != "" {
		u, err := url.Parse(s.cfg.BootURL)
		if err != nil {
			return 0, fmt.Errorf("boot-url: %w", err)
		}
		if p := u.Port(); p != "" {
			return strconv.Atoi(p)
		}
		if u.Scheme == "https" {
			return 0, fmt.Errorf("boot-url: %q is HTTPS; the PXE service hands firmware plain-HTTP URLs", s.cfg.BootURL)
		}
		return 80, nil
	}
	_, p, err := net.SplitHostPort(s.bootLn.Addr().String())
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

// signedChainReady says whether the x86_64 boot image has the signed
// chain's files (`imprint bootimage build` puts them there), or which
// one is missing.
func (s *Server) signedChainReady() error {
	dir := filepath.Join(BootImagesDir(s.cfg.DataDir), "x86_64")
	for _, name := range []string{boot.ShimFile, boot.GrubFile, "vmlinuz", "initrd.img"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("the boot image has no %s", name)
		}
	}
	return nil
}

// secureBoot is asked by the PXE service at every request: Secure Boot
// mode is on and the signed chain is there. Mode on without the files
// falls back to iPXE, with a warning once per change.
func (s *Server) secureBoot(ctx context.Context, warned *atomic.Bool) bool {
	sec, err := s.security(ctx)
	if err != nil {
		s.log.Error("pxe: read the Secure Boot setting; answering with iPXE", "err", err)
		return false
	}
	if sec.SecureBootOff {
		return false
	}
	if err := s.signedChainReady(); err != nil {
		if !warned.Swap(true) {
			s.log.Warn("pxe: Secure Boot mode is on but the signed chain is missing; UEFI machines get iPXE, which Secure Boot refuses (run imprint bootimage build)", "err", err)
		}
		return false
	}
	warned.Store(false)
	return true
}
