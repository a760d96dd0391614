package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/imprint-osd/imprint/internal/relay"
)

const usageRelay = `usage: imprint relay --upstream https://CENTRAL:7281 --ca ca.crt [flags]

Runs a branch relay: machines at the branch boot from it (boot port, and
PXE with --pxe) and talk to it; it forwards their logins, runs, events and
logs to the central server and keeps the central server's File content in a
cache by SHA-256, fetched once and checked. The relay has its own CA
(DATA/tls/ca.crt), which the machines behind it pin. Add the relay's
address to the central server's --trusted-proxy so that the central
throttle sees each machine's own address.

Flags:
  --upstream URL        the central server's HTTPS URL (required)
  --ca FILE             the central server's CA certificate (required;
                        its imprint-data/tls/ca.crt)
  --upstream-boot URL   the central boot port (default: upstream host, 7282)
  --data DIR            the relay's data directory (default imprint-relay)
  --listen ADDR         HTTPS port for machines (default :7281)
  --boot-listen ADDR    boot port (default :7282)
  --public-url URL      how machines reach --listen (default: the bound address)
  --boot-url URL        how machines reach --boot-listen
  --cert-host HOST      extra name or IP for the relay's certificate (repeatable)
  --pxe                 answer PXE (proxyDHCP and TFTP) on --pxe-interface
  --pxe-interface IF, --pxe-address IP
  --log-format text|json, --log-level debug|info|warn|error
`

func runRelay(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint relay", usageRelay)
	upstream := fs.String("upstream", "", "")
	upBoot := fs.String("upstream-boot", "", "")
	listen := fs.String("listen", ":7281", "")
	bootListen := fs.String("boot-listen", ":7282", "")
	publicURL := fs.String("public-url", "", "")
	bootURL := fs.String("boot-url", "", "")
	var certHosts listFlag
	fs.Var(&certHosts, "cert-host", "")
	pxeOn := fs.Bool("pxe", false, "")
	pxeIf := fs.String("pxe-interface", "", "")
	pxeAddr := fs.String("pxe-address", "", "")
	logFormat := fs.String("log-format", "text", "")
	logLevel := fs.String("log-level", "info", "")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	// --ca is the global flag (the CA that --server chains to): here, the
	// central server's.
	caFile := a.caFile.value
	if *upstream == "" || caFile == "" {
		return usagef("relay: --upstream and --ca are required", "run 'imprint relay -h' for usage")
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("relay: --ca: %w", err)
	}
	data := "imprint-relay"
	if a.dataDir.set {
		data = a.dataDir.value
	}
	log := newLogger(a, *logFormat, *logLevel)
	r, err := relay.Open(relay.Config{Upstream: *upstream, UpstreamCA: ca, UpstreamBoot: *upBoot, DataDir: data,
		Listen: *listen, BootListen: *bootListen, PublicURL: *publicURL, BootURL: *bootURL, CertHosts: splitList(certHosts),
		PXE: *pxeOn, PXEInterface: *pxeIf, PXEServerIP: *pxeAddr, Log: log})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return r.Serve(ctx)
}
