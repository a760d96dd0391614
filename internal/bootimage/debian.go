package bootimage

import (
	"context"
	"fmt"
	"io"
)

// DebianOptions is a build of the boot image from Debian's packages: what
// `imprint bootimage build` does without --kernel, and what the web
// console's "Build" button runs in the server.
type DebianOptions struct {
	Agent string    // the imprint-agent binary
	Cache string    // where the downloaded packages are kept
	Out   string    // the boot image directory
	Log   io.Writer // progress lines and warnings
}

// BuildDebian fetches Debian's current generic kernel and the signed
// Secure Boot chain (shim, GRUB) with apt-get download and builds the
// boot image into opts.Out. Without the signed chain the image is still
// built (the server then sends UEFI machines iPXE): that only warns.
func BuildDebian(ctx context.Context, opts DebianOptions) (*Image, error) {
	k, err := FetchKernel(ctx, opts.Cache, opts.Log)
	if err != nil {
		return nil, err
	}
	return BuildWithChain(ctx, opts, k)
}

// BuildWithChain builds the image of kernel k, with the signed chain
// fetched into opts.Cache when it can be.
func BuildWithChain(ctx context.Context, opts DebianOptions, k *Kernel) (*Image, error) {
	sc, err := FetchSignedChain(ctx, opts.Cache, opts.Log)
	if err != nil {
		fmt.Fprintf(opts.Log, "warning: no Secure Boot chain in this image (UEFI machines will get iPXE, which Secure Boot refuses): %v\n", err)
		sc = nil
	}
	return Build(ctx, BuildOptions{OutDir: opts.Out, Kernel: k, AgentPath: opts.Agent, Signed: sc, Log: opts.Log})
}
