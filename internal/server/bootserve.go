package server

import (
	"context"
	"net"
	"path/filepath"

	"github.com/imprint-osd/imprint/internal/boot"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// BootImagesDir is where `imprint bootimage build` puts the kernel and
// initrd the boot port serves: DIR/boot/images/{arch}/{vmlinuz,initrd.img}.
func BootImagesDir(dataDir string) string { return filepath.Join(dataDir, "boot", "images") }

// BootURL is the boot port as machines reach it.
func (s *Server) BootURL() string {
	if s.cfg.BootURL != "" {
		return s.cfg.BootURL
	}
	host := "localhost"
	if len(s.cfg.CertHosts) > 0 {
		host = s.cfg.CertHosts[0]
	}
	_, port, _ := net.SplitHostPort(s.bootLn.Addr().String())
	return "http://" + net.JoinHostPort(host, port)
}

func (s *Server) bootHandler() (*boot.Handler, error) {
	cfg := boot.DefaultConfig()
	cfg.PublicURL, cfg.BootURL, cfg.CAFingerprint = s.PublicURL(), s.BootURL(), s.CAFingerprint()
	cfg.Menu, cfg.KernelArgs = s.cfg.BootMenu, s.cfg.KernelArgs
	return boot.NewHandler(cfg, boot.DirFileSource(BootImagesDir(s.cfg.DataDir)), machineBoots{s.store}, s.log.With("component", "boot"))
}

// machineBoots makes a machine whose last run succeeded boot from its
// disk by default (unless an operator set its next boot), so a deployed
// machine that network-boots again is not re-imaged unless someone picks
// "Deploy" in the menu.
type machineBoots struct{ store deploy.Store }

func (m machineBoots) Machine(ctx context.Context, mac, uuid string) (boot.MachineBoot, bool) {
	// iPXE's ${uuid} and ${mac}, put in the form the device table keys
	// them by (a value that is neither names no device).
	ids := []string{}
	for _, s := range []string{uuid, mac} {
		if id, err := deploy.ParseDeviceID(s); err == nil {
			ids = append(ids, id)
		}
	}
	// One indexed read on every network boot: an operator's choice (the
	// console's devices page) for either id comes first, else the newest
	// run under either id decides.
	bs, err := m.store.BootState(ctx, ids...)
	if err != nil {
		return boot.MachineBoot{}, false // the defaults: never a machine stuck on a database error
	}
	switch {
	case bs.NextBoot == deploy.NextBootLocal:
		return boot.MachineBoot{DefaultEntry: boot.EntryLocal}, true
	case bs.NextBoot == deploy.NextBootDeploy:
		return boot.MachineBoot{DefaultEntry: boot.EntryDeploy}, true
	case bs.LastRun == deploy.RunSucceeded:
		return boot.MachineBoot{DefaultEntry: boot.EntryLocal}, true
	}
	return boot.MachineBoot{}, false
}
