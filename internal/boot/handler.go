package boot

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"text/template"
)

// MachineBoot is a per-machine override of the boot defaults.
type MachineBoot struct {
	// DefaultEntry replaces Config.DefaultEntry when set (e.g. "local" once deployed).
	DefaultEntry string
	// KernelArgs are appended after Config.KernelArgs.
	KernelArgs string
}

// MachineLookup finds a machine's boot override by MAC (lowercase,
// hyphens) and SMBIOS UUID (lowercase, may be empty). ok is false for
// unknown machines, which get the defaults.
type MachineLookup interface {
	Machine(ctx context.Context, mac, uuid string) (mb MachineBoot, ok bool)
}

// Handler serves the boot port's routes: GET /boot.ipxe, GET /ipxe,
// GET /ipxe/{file}, GET /images/{arch}/{name}, and the GRUB configs of
// the Secure Boot chain, GET /grub/grub.cfg and GET /grub/machine.cfg
// (which TFTPOpen also serves, with the boot files, over TFTP), and GET
// /machine (a machine's decision as JSON, for branch relays).
type Handler struct {
	cfg      Config
	files    FileSource
	machines MachineLookup
	log      *slog.Logger
	tmpl     *template.Template
	mux      *http.ServeMux
	stage1   []byte
	grubBoot []byte // templates/bootstrap.grub
}

var _ http.Handler = (*Handler)(nil)

// NewHandler checks cfg (the error names the bad field) and returns the
// boot handler. machines may be nil: every machine then gets the defaults.
func NewHandler(cfg Config, files FileSource, machines MachineLookup, log *slog.Logger) (*Handler, error) {
	cfg, err := cfg.normalised()
	if err != nil {
		return nil, err
	}
	if files == nil {
		return nil, fmt.Errorf("boot: FileSource is nil")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, files: files, machines: machines, log: log.With("component", "boot"), tmpl: t}
	if h.stage1, err = render(t, tmplStage1, struct{ BootURL string }{cfg.BootURL}); err != nil {
		return nil, err
	}
	if h.grubBoot, err = render(t, tmplGrubBootstrap, nil); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boot.ipxe", h.serveStage1)
	mux.HandleFunc("GET /ipxe", h.serveStage2)
	mux.HandleFunc("GET /ipxe/{file}", h.serveIPXEBinary)
	mux.HandleFunc("GET /images/{arch}/{name}", h.serveImage)
	mux.HandleFunc("GET /grub/grub.cfg", h.serveGrubBootstrap)
	mux.HandleFunc("GET /grub/machine.cfg", h.serveGrubMachine)
	mux.HandleFunc("GET /machine", h.serveMachine)
	h.mux = mux
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func writeScript(w http.ResponseWriter, script []byte) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(script)
}

func (h *Handler) serveStage1(w http.ResponseWriter, r *http.Request) {
	writeScript(w, h.stage1)
}

func (h *Handler) serveStage2(w http.ResponseWriter, r *http.Request) {
	d, err := h.machineData(r.Context(), r.URL.Query())
	if err != nil {
		h.log.Warn("stage two refused", "remote", r.RemoteAddr, "query", r.URL.RawQuery, "err", err)
		writeScript(w, h.errorScript(err.Error()))
		return
	}
	if h.log.Enabled(r.Context(), slog.LevelInfo) {
		h.log.Info("boot script", "mac", d.MAC, "uuid", d.UUID, "arch", d.Arch, "platform", d.Platform,
			"serial", d.Serial, "entry", d.Default, "menu", d.Menu)
	}
	buf := scriptBufs.Get().(*[]byte)
	*buf = appendStage2((*buf)[:0], &d)
	writeScript(w, *buf)
	scriptBufs.Put(buf)
}

// machineData validates a machine's query and makes the decisions both
// chains carry out (iPXE's stage two and GRUB's machine config): the
// default entry, the menu and the kernel arguments. Its errors are safe
// to show: they name what is wrong without repeating request values.
func (h *Handler) machineData(ctx context.Context, query url.Values) (stage2Data, error) {
	q, err := parseQuery(query)
	if err != nil {
		return stage2Data{}, err
	}
	d := stage2Data{
		machineQuery:  q,
		BootURL:       h.cfg.BootURL,
		PublicURL:     h.cfg.PublicURL,
		CAFingerprint: h.cfg.CAFingerprint,
		KernelArgs:    strings.Fields(h.cfg.KernelArgs),
		Menu:          h.cfg.Menu,
		TimeoutMS:     h.cfg.MenuTimeout.Milliseconds(),
		Default:       h.cfg.DefaultEntry,
	}
	if h.machines != nil {
		if mb, ok := h.machines.Machine(ctx, q.MAC, q.UUID); ok {
			if mb.DefaultEntry != "" {
				if err := checkEntry(mb.DefaultEntry); err != nil {
					h.log.Error("machine boot override", "mac", q.MAC, "err", err)
					return d, fmt.Errorf("the boot entry set for %s is invalid (see the server log)", q.MAC)
				}
				d.Default = mb.DefaultEntry
			}
			if err := ValidateKernelArgs(mb.KernelArgs); err != nil {
				h.log.Error("machine boot override", "mac", q.MAC, "err", err)
				return d, fmt.Errorf("the kernel arguments set for %s are invalid (see the server log)", q.MAC)
			}
			d.KernelArgs = append(d.KernelArgs, strings.Fields(mb.KernelArgs)...)
		}
	}
	return d, nil
}

// MachineDecision is the answer of GET /machine?mac=…&uuid=…: this
// server's boot decision for one machine, which a branch relay asks for
// so that a machine booting at the branch is treated as it would be at
// the central server. It tells no more than the machine's boot script
// on the same port already does.
type MachineDecision struct {
	Known        bool   `json:"known"` // false: the defaults apply
	DefaultEntry string `json:"defaultEntry,omitempty"`
	KernelArgs   string `json:"kernelArgs,omitempty"`
}

func (h *Handler) serveMachine(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	query := r.URL.Query()
	mac, err := normaliseMAC(query.Get("mac"))
	var uuid string
	if err == nil {
		uuid, err = normaliseUUID(query.Get("uuid"))
	}
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "invalid", "message": err.Error()}})
		return
	}
	var d MachineDecision
	if h.machines != nil {
		mb, ok := h.machines.Machine(r.Context(), mac, uuid)
		d = MachineDecision{Known: ok, DefaultEntry: mb.DefaultEntry, KernelArgs: mb.KernelArgs}
	}
	json.NewEncoder(w).Encode(d)
}

// errorScript renders a script that prints msg and offers the iPXE shell.
// msg is reduced to inert characters as a second line of defence.
func (h *Handler) errorScript(msg string) []byte {
	b, err := render(h.tmpl, tmplError, struct{ Message string }{inert(msg)})
	if err != nil { // the template is embedded and tested; this is a bug
		h.log.Error("render error script", "err", err)
		return []byte("#!ipxe\necho Imprint: internal error, see the server log\nexit 1\n")
	}
	return b
}

// inert reduces msg to characters that neither iPXE nor GRUB interprets
// (no quotes, $, braces, separators), as a second line of defence.
func inert(msg string) string {
	return strings.Map(func(r rune) rune {
		if argChar(r) || r == ' ' || r == '(' || r == ')' {
			return r
		}
		return '?'
	}, msg)
}

func (h *Handler) serveImage(w http.ResponseWriter, r *http.Request) {
	arch, name := r.PathValue("arch"), r.PathValue("name")
	if !validArch(arch) {
		http.Error(w, fmt.Sprintf("imprint: unknown architecture %q (want x86_64, i386 or arm64)", arch), http.StatusNotFound)
		return
	}
	if !imageFile(name) {
		http.Error(w, fmt.Sprintf("imprint: unknown boot file %q (want vmlinuz, initrd.img, shimx64.efi or grubx64.efi)", name), http.StatusNotFound)
		return
	}
	f, mod, _, err := h.files.Open(arch, name)
	if err != nil {
		if notExist(err) {
			h.log.Warn("boot image file missing", "arch", arch, "name", name, "err", err)
			http.Error(w, fmt.Sprintf("imprint: no boot image for %s on this server (build one with imprint bootimage build)", arch), http.StatusNotFound)
			return
		}
		h.log.Error("open boot image file", "arch", arch, "name", name, "err", err)
		http.Error(w, "imprint: could not open the boot file, see the server log", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, name, mod, f)
}

func (h *Handler) serveIPXEBinary(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if !ipxeFile(name) {
		http.Error(w, fmt.Sprintf("imprint: unknown iPXE binary %q (want ipxe.efi, snponly.efi, undionly.kpxe, undionly.kkpxe or ipxe.pxe)", name), http.StatusNotFound)
		return
	}
	f, mod, _, err := openRegular(filepath.Join(h.cfg.IPXEDir, name))
	if err != nil {
		if notExist(err) {
			h.log.Warn("iPXE binary missing", "dir", h.cfg.IPXEDir, "name", name, "err", err)
			http.Error(w, fmt.Sprintf("imprint: iPXE binary %s is not available on this server (install Debian's ipxe package or set the iPXE directory)", name), http.StatusNotFound)
			return
		}
		h.log.Error("open iPXE binary", "dir", h.cfg.IPXEDir, "name", name, "err", err)
		http.Error(w, "imprint: could not open the iPXE binary, see the server log", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, name, mod, f)
}
