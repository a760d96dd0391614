package boot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
)

// Files of the Secure Boot chain in a boot image directory (beside
// vmlinuz and initrd.img): Debian's shim signed by Microsoft's UEFI CA
// and Debian's signed network GRUB under the name shim loads.
const (
	ShimFile = "shimx64.efi"
	GrubFile = "grubx64.efi"
)

// TFTP names of the Secure Boot chain. Firmware loads bootx64.efi (shim),
// shim loads grubx64.efi from the same directory, and Debian's signed
// network GRUB, built with prefix /grub, reads /grub/grub.cfg from the
// server it was loaded from.
const (
	TFTPShim          = "bootx64.efi"
	TFTPGrub          = "grubx64.efi"
	TFTPGrubBootstrap = "grub/grub.cfg"
	tftpGrubMachine   = "grub/machine.cfg"
)

func (h *Handler) serveGrubBootstrap(w http.ResponseWriter, r *http.Request) {
	writeScript(w, h.grubBoot)
}

func (h *Handler) serveGrubMachine(w http.ResponseWriter, r *http.Request) {
	writeScript(w, h.grubMachine(r.Context(), r.RemoteAddr, r.URL.Query()))
}

// grubMachine renders a machine's GRUB config, or a config that prints
// what is wrong: like iPXE, GRUB shows nothing useful for a failed fetch.
func (h *Handler) grubMachine(ctx context.Context, remote string, q url.Values) []byte {
	d, err := h.machineData(ctx, q)
	if err == nil {
		h.log.Info("grub config", "mac", d.MAC, "uuid", d.UUID, "arch", d.Arch, "platform", d.Platform,
			"entry", d.Default, "menu", d.Menu)
		var b []byte
		if b, err = render(h.tmpl, tmplGrubMachine, d); err == nil {
			return b
		}
	}
	h.log.Warn("grub config refused", "remote", remote, "query", q.Encode(), "err", err)
	b, rerr := render(h.tmpl, tmplGrubError, struct{ Message string }{inert(err.Error())})
	if rerr != nil { // the template is embedded and tested; this is a bug
		h.log.Error("render grub error config", "err", rerr)
		return []byte("echo 'Imprint: internal error, see the server log'\nsleep 30\nexit\n")
	}
	return b
}

// TFTPOpen serves the Secure Boot chain over TFTP, for the PXE service:
// bootx64.efi (shim) and grubx64.efi (signed GRUB) from the x86_64 boot
// image directory, grub/grub.cfg, grub/machine.cfg?QUERY (the machine's
// config, as GET /grub/machine.cfg) and images/{arch}/{vmlinuz,initrd.img}.
// Debian's signed GRUB has no HTTP, so all of it must be on TFTP. Other
// names get an error wrapping fs.ErrNotExist. remote is for the log.
func (h *Handler) TFTPOpen(ctx context.Context, remote, name string) (io.ReadCloser, int64, error) {
	name = strings.TrimPrefix(name, "/")
	path, rawQuery, _ := strings.Cut(name, "?")
	switch path {
	case TFTPShim:
		return h.openFile("x86_64", ShimFile)
	case TFTPGrub:
		return h.openFile("x86_64", GrubFile)
	case TFTPGrubBootstrap:
		return bytesFile(h.grubBoot)
	case tftpGrubMachine:
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			q = url.Values{} // parseQuery then names the missing MAC
		}
		return bytesFile(h.grubMachine(ctx, remote, q))
	}
	if rest, ok := strings.CutPrefix(path, "images/"); ok && rawQuery == "" {
		if arch, file, ok := strings.Cut(rest, "/"); ok && validArch(arch) && imageFile(file) {
			return h.openFile(arch, file)
		}
	}
	return nil, 0, fmt.Errorf("boot: no TFTP file %q: %w", name, fs.ErrNotExist)
}

func (h *Handler) openFile(arch, name string) (io.ReadCloser, int64, error) {
	f, _, size, err := h.files.Open(arch, name)
	if err != nil {
		return nil, 0, err
	}
	return f, size, nil
}

func bytesFile(b []byte) (io.ReadCloser, int64, error) {
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}
