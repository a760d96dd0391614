package cli

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/imprint-osd/imprint/internal/bootimage"
	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/server"
)

const usageBootimage = `usage: imprint bootimage SUBCOMMAND [flags]

Subcommands:
  build [--agent PATH] [--kernel VMLINUZ --modules DIR] [--cache DIR] [--out DIR]
        build the boot image: a kernel (Debian's current generic kernel,
        downloaded into --cache, or the bzImage VMLINUZ with its
        /lib/modules/VERSION directory DIR) and an initramfs with the agent as
        /init. --agent defaults to the imprint-agent next to this imprint
        executable, --cache to DIR/cache, --out to DIR/boot/images/x86_64,
        where the running server's boot port serves it at once. When the
        server is running, the image is also registered as a BootImage
        content item ("Imprint boot image VERSION"). Debian's shim-signed
        and grub-efi-amd64-signed are downloaded into --cache too, and
        shimx64.efi and grubx64.efi put beside the kernel: the signed chain
        that imprint server --pxe sends UEFI machines in Secure Boot mode
        (imprint security set secure-boot). A kernel without a signature
        (a custom --kernel) is warned about: Secure Boot machines refuse it.
  iso --out FILE [--server URL] [--ca FILE] [--image DIR]
        write a hybrid BIOS+UEFI ISO of the boot image in --image (default
        DIR/boot/images/x86_64) with the server URL (the https URL machines
        use to reach the API, as in imprint server --public-url; asked of
        the running server when not given) and the fingerprint of the CA
        certificate (--ca, default DIR/tls/ca.crt) built in; when the image
        has the signed chain, the ISO's UEFI boot is shim and Debian's signed
        GRUB, so it boots with Secure Boot on too

DIR is the data directory (--data).
`

func runBootimage(ctx context.Context, a *app, args []string) error {
	return subcommand(ctx, a, "bootimage", args, map[string]func(context.Context, *app, []string) error{
		"build": bootimageBuild,
		"iso":   bootimageISO,
	}, usageBootimage)
}

// buildPlan is what `bootimage build` does, with every default filled in.
type buildPlan struct {
	Agent      string // the imprint-agent binary
	Kernel     string // a given bzImage; empty: fetch Debian's
	ModulesDir string // its /lib/modules/VERSION
	Cache      string // where FetchKernel keeps packages
	Out        string // the boot image directory
}

// buildFlags are the flags of `bootimage build`.
type buildFlags struct {
	agent, kernel, modules, cache, out string
}

// plan fills in the defaults: executable returns the running imprint's
// path (os.Executable).
func (f buildFlags) plan(data string, executable func() (string, error)) (buildPlan, error) {
	p := buildPlan{Agent: f.agent, Kernel: f.kernel, ModulesDir: f.modules, Cache: f.cache, Out: f.out}
	if (p.Kernel == "") != (p.ModulesDir == "") {
		return p, usagef("bootimage build: --kernel and --modules go together (the bzImage and its /lib/modules/VERSION directory)", "run 'imprint bootimage -h' for usage")
	}
	if p.Agent == "" {
		exe, err := executable()
		if err != nil {
			return p, fmt.Errorf("bootimage build: find this executable to locate imprint-agent beside it: %w (give --agent)", err)
		}
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		p.Agent = filepath.Join(filepath.Dir(exe), "imprint-agent")
	}
	if p.Cache == "" {
		p.Cache = filepath.Join(data, "cache")
	}
	if p.Out == "" {
		p.Out = filepath.Join(server.BootImagesDir(data), "x86_64")
	}
	return p, nil
}

func bootimageBuild(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint bootimage build", usageBootimage)
	var f buildFlags
	fs.StringVar(&f.agent, "agent", "", "")
	fs.StringVar(&f.kernel, "kernel", "", "")
	fs.StringVar(&f.modules, "modules", "", "")
	fs.StringVar(&f.cache, "cache", "", "")
	fs.StringVar(&f.out, "out", "", "")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	p, err := f.plan(a.data(), os.Executable)
	if err != nil {
		return err
	}
	if info, err := os.Stat(p.Agent); err != nil || !info.Mode().IsRegular() {
		return fmt.Errorf("bootimage build: agent %s not found: build it (CGO_ENABLED=0 go build ./cmd/imprint-agent) or give --agent", p.Agent)
	}

	var k *bootimage.Kernel
	if p.Kernel != "" {
		k, err = bootimage.KernelFromDir(p.Kernel, p.ModulesDir)
	} else {
		k, err = bootimage.FetchKernel(ctx, p.Cache, a.stderr)
	}
	if err != nil {
		return fmt.Errorf("bootimage build: %w", err)
	}
	// The Secure Boot chain (shim and signed GRUB) for UEFI network boot;
	// without it the server sends UEFI machines iPXE, so a failed
	// download only warns. The console's Build runs the same code
	// (bootimage.BuildDebian).
	img, err := bootimage.BuildWithChain(ctx, bootimage.DebianOptions{Agent: p.Agent, Cache: p.Cache, Out: p.Out, Log: a.stderr}, k)
	if err != nil {
		return fmt.Errorf("bootimage build: %w", err)
	}
	fmt.Fprintf(a.stdout, "built boot image of kernel %s in %s\n", img.Manifest.KernelVersion, img.Dir)

	item, v, err := a.registerBootImage(ctx, img)
	switch {
	case deploy.ErrorKind(err) == deploy.KindUnavailable:
		fmt.Fprintf(a.stdout, "The server is not running, so the image is not registered as content; the files stay in %s.\n", img.Dir)
		return nil
	case err != nil:
		return fmt.Errorf("bootimage build: register: %w", err)
	}
	if a.jsonOut {
		return a.printJSON(map[string]any{"dir": img.Dir, "manifest": img.Manifest, "contentItem": item.ID, "versionNo": v.VersionNo})
	}
	fmt.Fprintf(a.stdout, "registered as content item %s (%s), version %d\n", safe(item.ID), safe(item.Name), v.VersionNo)
	return nil
}

// bootImageFiles are the files of a boot image registered as content.
var bootImageFiles = [...]string{bootimage.VmlinuzName, bootimage.InitrdName, bootimage.ManifestName}

// registerBootImage adds img as a Folder version of the BootImage item
// named after its kernel, creating the item the first time.
func (a *app) registerBootImage(ctx context.Context, img *bootimage.Image) (*deploy.ContentItem, *deploy.ContentVersion, error) {
	c, err := a.client()
	if err != nil {
		return nil, nil, err
	}
	name := "Imprint boot image " + img.Manifest.KernelVersion
	items, err := c.ContentItems(ctx)
	if err != nil {
		return nil, nil, err
	}
	var item *deploy.ContentItem
	for i := range items {
		if items[i].Name == name && items[i].Purpose == deploy.PurposeBootImage && items[i].Type == deploy.ContentFolder {
			item = &items[i]
			break
		}
	}
	if item == nil {
		desc := "Kernel " + img.Manifest.KernelVersion + " and the initramfs with the Imprint agent, built by imprint bootimage build"
		if item, err = c.CreateContentItem(ctx, deploy.ContentItem{Name: name, Type: deploy.ContentFolder,
			Purpose: deploy.PurposeBootImage, Description: deploy.StrPtr(desc)}); err != nil {
			return nil, nil, err
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeFilesTar(ctx, pw, img.Dir, bootImageFiles[:])) }()
	defer pr.Close()
	meta := deploy.ContentVersion{Status: deploy.StatusActive, Description: deploy.StrPtr("agent sha256 " + img.Manifest.AgentSHA256)}
	v, err := c.AddContentVersion(ctx, item.ID, meta, pr, "application/x-tar")
	if err != nil {
		return nil, nil, err
	}
	return item, v, nil
}

// writeFilesTar writes the named regular files of dir as a tar stream.
func writeFilesTar(ctx context.Context, w io.Writer, dir string, names []string) error {
	tw := tar.NewWriter(w)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		path := filepath.Join(dir, name)
		info, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("folder: %w", err)
		}
		hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Size: info.Size(),
			Mode: int64(info.Mode().Perm()), ModTime: info.ModTime().UTC().Truncate(1e9)}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("folder: %s: %w", name, err)
		}
		if err := copyFile(tw, path, name, hdr.Size); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("folder: finish tar: %w", err)
	}
	return nil
}

func bootimageISO(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("imprint bootimage iso", usageBootimage)
	out := fs.String("out", "", "")
	imageDir := fs.String("image", "", "")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	hint := "run 'imprint bootimage -h' for usage"
	if *out == "" {
		return usagef("bootimage iso: --out FILE is required", hint)
	}
	serverURL, fp, img, err := a.buildISO(ctx, *out, *imageDir)
	if err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(map[string]string{"iso": *out, "server": serverURL, "caSHA256": fp, "kernelVersion": img.Manifest.KernelVersion})
	}
	fmt.Fprintf(a.stdout, "wrote %s (kernel %s, server %s, CA sha256 %s)\n", *out, img.Manifest.KernelVersion, serverURL, fp)
	return nil
}

// buildISO writes the boot image's ISO to out for the server machines
// reach: the global --server, else the public URL of the server running on
// this data directory. imageDir defaults to the data directory's boot
// image.
func (a *app) buildISO(ctx context.Context, out, imageDir string) (serverURL, fp string, img *bootimage.Image, err error) {
	hint := "run 'imprint bootimage -h' for usage"
	// The global --server names the server; without it, a server running
	// on this data directory tells its public URL.
	serverURL = a.remoteURL()
	if serverURL == "" {
		if info, err := client.NewAdmin(server.SocketPath(a.data())).Info(ctx); err == nil {
			serverURL = info.PublicURL
		}
	}
	if serverURL == "" {
		return "", "", nil, usagef("bootimage iso: --server URL is required when the server is not running: the https URL machines use to reach the API, e.g. https://imprint.example.org:7281 (the server's --public-url)", hint)
	}
	if imageDir == "" {
		imageDir = filepath.Join(server.BootImagesDir(a.data()), "x86_64")
	}
	caFile := a.caPath()
	if caFile == "" {
		caFile = server.CACertPath(a.data())
	}
	if fp, err = caFingerprint(caFile); err != nil {
		return "", "", nil, fmt.Errorf("bootimage iso: %w", err)
	}
	if img, err = bootimage.LoadImage(imageDir); err != nil {
		return "", "", nil, fmt.Errorf("bootimage iso: %w (run 'imprint bootimage build' first)", err)
	}
	if err := bootimage.BuildISO(ctx, out, img, serverURL, fp); err != nil {
		return "", "", nil, fmt.Errorf("bootimage iso: %w", err)
	}
	return serverURL, fp, img, nil
}

// caFingerprint is the hex SHA-256 of the DER of the first certificate in
// the PEM file path.
func caFingerprint(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("CA certificate %s not found: start the server once with this --data directory to create it", path)
	}
	if err != nil {
		return "", fmt.Errorf("CA certificate: %w", err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return "", fmt.Errorf("CA certificate %s: no PEM CERTIFICATE block", path)
		}
		if blk.Type == "CERTIFICATE" {
			sum := sha256.Sum256(blk.Bytes)
			return hex.EncodeToString(sum[:]), nil
		}
	}
}
