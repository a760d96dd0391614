package disksteps

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/disk"
	"github.com/imprint-osd/imprint/internal/sequence"
	"github.com/imprint-osd/imprint/internal/unattend"
)

func isTrue(s string) bool {
	b, _ := strconv.ParseBool(strings.TrimSpace(s))
	return b
}

// disks lists the machine's disks.
func (d *Deps) disks() ([]disk.Disk, error) {
	if d.Disks == nil {
		return disk.Lister{}.List()
	}
	infos, err := d.Disks()
	if err != nil {
		return nil, err
	}
	out := make([]disk.Disk, len(infos))
	for i, x := range infos {
		out[i] = disk.Disk{Path: x.Path, Size: x.Size, Bus: x.Bus, Model: x.Model, Serial: x.Serial,
			Removable: x.Removable, ReadOnly: x.ReadOnly, IsBoot: x.IsBoot}
	}
	return out, nil
}

// selectDisk applies DiskRule / DiskIndex / AllowRemovable.
func (d *Deps) selectDisk(env *sequence.Env) (disk.Disk, int, error) {
	spec, err := DiskRuleSpec(env.Setting("DiskRule"), env.Setting("DiskIndex"), env.Setting("AllowRemovable"))
	if err != nil {
		return disk.Disk{}, 0, err
	}
	rule, err := disk.ParseRule(spec)
	if err != nil {
		return disk.Disk{}, 0, err
	}
	list, err := d.disks()
	if err != nil {
		return disk.Disk{}, 0, fmt.Errorf("list disks: %w", err)
	}
	sel, err := disk.Select(list, rule)
	if err != nil {
		return disk.Disk{}, 0, err
	}
	for i := range list {
		if list[i].Path == sel.Path {
			return sel, i, nil
		}
	}
	return sel, 0, nil
}

// Format is the Format disk step.
type Format struct{ D *Deps }

// Run selects the disk, writes the layout and sets the disk variables.
func (s Format) Run(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
	layout, err := LayoutFor(env.Setting("Layout"), env.Setting("PartitionStyle"), isTrue(env.Vars.Value("IsUEFI")))
	if err != nil {
		return sequence.Result{}, err
	}
	l, err := disk.ParseLayout(layout)
	if err != nil {
		return sequence.Result{}, err
	}
	d, idx, err := s.D.selectDisk(env)
	if err != nil {
		return sequence.Result{}, err
	}
	fmt.Fprintf(env.Log, "Formatting %s with layout %s\n", d, l)
	res, err := disk.Format(ctx, d.Path, l)
	if err != nil {
		return sequence.Result{}, err
	}
	vars := FormatVars(d.Path, idx, res)
	for _, k := range sortedKeys(vars) {
		env.Vars.SetInternal(k, vars[k])
	}
	table := DescribeTable(res)
	fmt.Fprint(env.Log, table)
	return sequence.Result{Output: table}, nil
}

// FormatVars are the variables Format disk sets for what it wrote.
func FormatVars(diskPath string, index int, res *disk.Result) map[string]string {
	v := map[string]string{
		VarOSDisk:       diskPath,
		VarOSDiskLayout: string(res.Layout),
		VarDiskIndex:    strconv.Itoa(index),
	}
	spec := func(name string) string {
		if p, ok := res.Part(name); ok {
			return PartitionSpec(diskPath, p.Device, p.Number)
		}
		return ""
	}
	switch res.Layout {
	case disk.LinuxUEFI:
		v[VarOSPartition], v[VarESPPartition], v[VarBootPartition] = spec("root"), spec("ESP"), spec("ESP")
	case disk.LinuxBIOS:
		v[VarOSPartition], v[VarBootPartition] = spec("root"), spec("root")
	case disk.WindowsUEFI:
		v[VarOSPartition], v[VarESPPartition], v[VarBootPartition] = spec("Windows"), spec("ESP"), spec("ESP")
	case disk.WindowsBIOS:
		v[VarOSPartition], v[VarBootPartition] = spec("Windows"), spec("System")
	}
	return v
}

// DescribeTable renders a Format result for the step's log.
func DescribeTable(res *disk.Result) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s table, layout %s, disk %s\n", strings.ToUpper(res.Table), res.Layout, disk.FormatSize(res.DiskSize))
	for _, p := range res.Partitions {
		fs := p.Filesystem
		if fs == "" {
			fs = "-"
		}
		fmt.Fprintf(&sb, "  %d %-8s start %-10d size %-10s type %s fs %s %s\n", p.Number, p.Name, p.Start,
			disk.FormatSize(p.Size), p.Type, fs, PartitionSpec(p.DiskPath, p.Device, p.Number))
	}
	return sb.String()
}

// openImage opens the Image option: streamed when the engine left it
// unfetched (Env.Refs), else the fetched local file.
func (d *Deps) openImage(ctx context.Context, env *sequence.Env) (io.ReadCloser, *client.ContentInfo, error) {
	for k, ref := range env.Refs {
		if strings.EqualFold(k, "Image") {
			if d.Content == nil {
				return nil, nil, errors.New("no content client to stream the image with")
			}
			why := ""
			if on, _ := strconv.ParseBool(strings.TrimSpace(env.Setting("Multicast"))); on {
				rc, info, ok, reason := d.openMulticast(ctx, ref, env.Log)
				if ok {
					return rc, info, nil
				}
				why = reason
			}
			switch {
			case d.Peers == nil:
			case !PeeringOn(env.Vars):
				why = "peer sharing is off (Peering=false)"
				fmt.Fprintf(env.Log, "Peer sharing is off for this run (%s=false)\n", VarPeering)
			default:
				rc, info, ok, reason := d.openPeers(ctx, ref, env.Log)
				if ok {
					return rc, info, nil
				}
				if reason != "" {
					why = reason
				}
			}
			rc, info, err := d.Content.OpenContent(ctx, ref.ID, ref.VersionNo)
			if err != nil {
				return nil, nil, fmt.Errorf("open image %s: %w", ref, err)
			}
			return &countedStream{ReadCloser: rc, why: why}, info, nil
		}
	}
	for k, p := range env.Content {
		if strings.EqualFold(k, "Image") && p != "" {
			f, err := os.Open(p)
			if err != nil {
				return nil, nil, fmt.Errorf("open image: %w", err)
			}
			fi, _ := f.Stat()
			name := filepath.Base(p)
			return f, &client.ContentInfo{Item: deploy.ContentItem{Name: name},
				Version: deploy.ContentVersion{RelativePath: &name, ContentSize: fi.Size()}}, nil
		}
	}
	return nil, nil, deploy.Errorf(deploy.KindInvalid, "option Image is empty: choose the operating-system image")
}

// progressReader reports the stored bytes read.
type progressReader struct {
	r           io.Reader
	done, total int64
	name        string
	fn          func(name string, done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.fn != nil && (n > 0 || err == io.EOF) {
		p.fn(p.name, p.done, p.total)
	}
	return n, err
}

func (d *Deps) withProgress(r io.Reader, info *client.ContentInfo) io.Reader {
	if d.Progress == nil {
		return r
	}
	total := info.Version.ContentSize
	if total <= 0 {
		total = -1
	}
	return &progressReader{r: r, total: total, name: info.Item.Name, fn: d.Progress}
}

// ApplyOS is the Apply operating system step.
type ApplyOS struct{ D *Deps }

// Run writes the image onto the target partition.
func (s ApplyOS) Run(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
	// Peer sharing logs from its fetcher goroutine while the step writes
	// its own lines: one lock for both.
	if env.Log != nil {
		locked := *env
		locked.Log = &lockedWriter{w: env.Log}
		env = &locked
	}
	format, err := ImageFormat(env.Setting("ImageFormat"))
	if err != nil {
		return sequence.Result{}, err
	}
	if _, err := unattend.ParseMethod(env.Setting("ContinueMethod")); err != nil {
		return sequence.Result{}, err
	}
	target := strings.TrimSpace(env.Setting("TargetPartition"))
	if target == "" {
		target = env.Vars.Value(VarOSPartition)
	}
	if target == "" {
		return sequence.Result{}, deploy.Errorf(deploy.KindInvalid, "no target partition: run Format disk first or set TargetPartition")
	}
	part, err := ResolvePartition(target)
	if err != nil {
		return sequence.Result{}, err
	}
	rc, info, err := s.D.openImage(ctx, env)
	if err != nil {
		return sequence.Result{}, err
	}
	defer rc.Close()
	name := deploy.Str(info.Version.RelativePath)
	if name == "" {
		name = info.Item.Name
	}
	if format == "auto" {
		format = formatFromName(name)
	}
	sha := strings.ToLower(info.Version.SHA256)
	in := s.D.withProgress(rc, info)
	fmt.Fprintf(env.Log, "Applying %s (%s, %s) to %s\n", info.Item.Name, name, format, target)
	var msg string
	switch format {
	case "raw":
		dst, off, limit := rawTarget(part)
		w, err := disk.ApplyRaw(ctx, dst, off, limit, in, disk.Auto, sha, nil, readBack(env)...)
		if err != nil {
			return sequence.Result{}, err
		}
		msg = fmt.Sprintf("Wrote %d bytes (%s, %d stored bytes, SHA-256 %s verified%s)", w.Bytes, w.Format, w.InputBytes, w.InputSHA256, readBackNote(w))
	case "tar":
		hr := &hashingReader{r: in, h: sha256.New()}
		if err := disk.ApplyTar(ctx, part, hr, disk.TarOptions{TempDir: s.D.TempDir}); err != nil {
			return sequence.Result{}, err
		}
		if err := hr.check(sha); err != nil {
			return sequence.Result{}, err
		}
		msg = fmt.Sprintf("Built ext4 from the %d-byte root-filesystem archive", hr.n)
	case "wim":
		index := 1
		if s := strings.TrimSpace(env.Setting("ImageIndex")); s != "" {
			if index, err = strconv.Atoi(s); err != nil || index < 1 {
				return sequence.Result{}, deploy.Errorf(deploy.KindInvalid, "ImageIndex %q is not a WIM image number (from 1)", s)
			}
		}
		if err := s.applyWIM(ctx, part, in, sha, index); err != nil {
			return sequence.Result{}, err
		}
		msg = fmt.Sprintf("Applied WIM image %d", index)
		if err := RecordWindowsOptions(env); err != nil {
			return sequence.Result{}, err
		}
	}
	env.Vars.SetInternal(VarOSImageName, info.Item.Name)
	env.Vars.SetInternal(VarOSImageVer, strconv.Itoa(info.Version.VersionNo))
	msg += sourcesNote(rc)
	fmt.Fprintln(env.Log, msg)
	return sequence.Result{Output: msg, Downloads: downloadOf(rc, info)}, nil
}

// pipableWIMMagic starts a WIM written with wimlib-imagex --pipable.
var pipableWIMMagic = []byte("WLPWM\x00\x00\x00")

func (s ApplyOS) applyWIM(ctx context.Context, part disk.Partition, in io.Reader, sha string, index int) error {
	br := bufio.NewReaderSize(in, 64<<10)
	magic, _ := br.Peek(8)
	hr := &hashingReader{r: br, h: sha256.New()}
	if string(magic) == string(pipableWIMMagic) {
		if err := disk.ApplyWIM(ctx, part, disk.WIMSource{Stream: hr}, index, "Windows"); err != nil {
			return err
		}
		return hr.check(sha)
	}
	// A normal WIM needs random access: stage it in a temporary file.
	f, err := os.CreateTemp(s.D.TempDir, "imprint-*.wim")
	if err != nil {
		return fmt.Errorf("stage WIM: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, hr); err != nil {
		return fmt.Errorf("stage WIM: %w", err)
	}
	if err := hr.check(sha); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("stage WIM: %w", err)
	}
	return disk.ApplyWIM(ctx, part, disk.WIMSource{Path: f.Name()}, index, "Windows")
}

// hashingReader hashes what passes; check drains the rest and compares.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashingReader) check(want string) error {
	if _, err := io.Copy(io.Discard, h); err != nil {
		return fmt.Errorf("read image: %w", err)
	}
	got := hex.EncodeToString(h.h.Sum(nil))
	if want != "" && got != want {
		return deploy.Errorf(deploy.KindInvalid, "image SHA-256 is %s, expected %s: what was written must not be trusted", got, want)
	}
	return nil
}

// WholeDisk is Apply ChromeOS Flex and Apply IGEL image: a raw disk image
// written from byte 0 of the selected disk.
type WholeDisk struct {
	D    *Deps
	What string // "ChromeOS Flex", "IGEL OS"
}

// Run streams the image onto the disk and verifies it.
func (s WholeDisk) Run(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
	d, idx, err := s.D.selectDisk(env)
	if err != nil {
		return sequence.Result{}, err
	}
	rc, info, err := s.D.openImage(ctx, env)
	if err != nil {
		return sequence.Result{}, err
	}
	defer rc.Close()
	fmt.Fprintf(env.Log, "Writing %s image %s to %s\n", s.What, info.Item.Name, d)
	w, err := disk.ApplyRaw(ctx, d.Path, 0, d.Size, s.D.withProgress(rc, info), disk.Auto, info.Version.SHA256, nil, readBack(env)...)
	if err != nil {
		return sequence.Result{}, err
	}
	env.Vars.SetInternal(VarOSDisk, d.Path)
	env.Vars.SetInternal(VarDiskIndex, strconv.Itoa(idx))
	env.Vars.SetInternal(VarOSImageName, info.Item.Name)
	env.Vars.SetInternal(VarOSImageVer, strconv.Itoa(info.Version.VersionNo))
	msg := fmt.Sprintf("Wrote %d bytes (%s) to %s, SHA-256 verified%s", w.Bytes, w.Format, d.Path, readBackNote(w))
	fmt.Fprintln(env.Log, msg)
	return sequence.Result{Output: msg}, nil
}

// Capture is the Capture image step: a disk or partition captured as a
// zstd raw image, uploaded as a new version of TargetContentItem.
type Capture struct{ D *Deps }

// Run captures and uploads while reading (nothing is staged).
func (s Capture) Run(ctx context.Context, env *sequence.Env) (sequence.Result, error) {
	item := strings.TrimSpace(env.Setting("TargetContentItem"))
	if item == "" {
		return sequence.Result{}, deploy.Errorf(deploy.KindInvalid, "Capture image needs TargetContentItem: the server accepts captures only into a named content item")
	}
	level, err := CaptureLevel(env.Setting("Compression"))
	if err != nil {
		return sequence.Result{}, err
	}
	src := strings.TrimSpace(env.Setting("Source"))
	if src == "" {
		src = env.Vars.Value(VarOSPartition)
	}
	if src == "" {
		return sequence.Result{}, deploy.Errorf(deploy.KindInvalid, "Capture image: no Source and no OSPartition variable")
	}
	path, off, length := src, int64(0), int64(0)
	if _, _, ok := SplitImageSpec(src); ok {
		p, err := ResolvePartition(src)
		if err != nil {
			return sequence.Result{}, err
		}
		path, off, length = p.DiskPath, p.Start, p.Size
	}
	if s.D.Uploader == nil {
		return sequence.Result{}, errors.New("no uploader configured")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	type capResult struct {
		sha string
		n   int64
		err error
	}
	done := make(chan capResult, 1)
	go func() {
		sha, n, err := disk.CaptureRaw(ctx, path, off, length, pw, level)
		pw.CloseWithError(err)
		done <- capResult{sha, n, err}
	}()
	fmt.Fprintf(env.Log, "Capturing %s (zstd level %d) into content item %s\n", src, level, item)
	v, uerr := s.D.Uploader.UploadCapture(ctx, item, pr)
	if uerr != nil {
		cancel()
		pr.CloseWithError(uerr)
	}
	c := <-done
	if uerr != nil {
		return sequence.Result{}, fmt.Errorf("upload capture: %w", uerr)
	}
	if c.err != nil {
		return sequence.Result{}, fmt.Errorf("capture %s: %w", src, c.err)
	}
	if v.SHA256 != "" && !strings.EqualFold(v.SHA256, c.sha) {
		return sequence.Result{}, fmt.Errorf("capture %s: the server stored SHA-256 %s, the agent sent %s", src, v.SHA256, c.sha)
	}
	env.Vars.SetInternal("CAPTUREDVERSION", item+":"+strconv.Itoa(v.VersionNo))
	msg := fmt.Sprintf("Captured %s as version %d of %s (%d bytes, SHA-256 %s)", src, v.VersionNo, item, c.n, c.sha)
	fmt.Fprintln(env.Log, msg)
	return sequence.Result{Output: msg}, nil
}

// readBack reads the VerifyWrite option: by default a raw image is trusted
// once its SHA-256 matches and fsync succeeds; with VerifyWrite the disk is
// read back and compared too.
func readBack(env *sequence.Env) []disk.ApplyOption {
	if strings.EqualFold(strings.TrimSpace(env.Setting("VerifyWrite")), "true") {
		return nil
	}
	return []disk.ApplyOption{disk.WithoutReadBack()}
}

func readBackNote(w disk.Written) string {
	if w.SHA256 != "" {
		return ", read back and compared"
	}
	return ""
}
