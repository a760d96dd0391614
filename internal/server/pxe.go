package server

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"

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
