package disksteps

import (
	"context"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/imprint-osd/imprint/internal/client"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/multicast"
	"github.com/imprint-osd/imprint/internal/stepdefs"
	"github.com/imprint-osd/imprint/internal/windrivers"
)

// Content streams content versions (*client.Machine implements it).
type Content interface {
	OpenContent(ctx context.Context, id string, no int) (io.ReadCloser, *client.ContentInfo, error)
}

// Multicaster joins a multicast session for a content version and opens
// the rest of it by unicast from an offset (*client.Machine implements
// it).
type Multicaster interface {
	BaseURL() string
	ContentInfo(ctx context.Context, id string, no int) (*client.ContentInfo, error)
	MulticastSession(ctx context.Context, id string, no int) (multicast.Session, bool, error)
	OpenContentAt(ctx context.Context, info *client.ContentInfo, off int64) (io.ReadCloser, error)
}

// Uploader sends a captured image (*client.Machine implements it).
type Uploader interface {
	UploadCapture(ctx context.Context, itemID string, body io.Reader) (*deploy.ContentVersion, error)
}

var (
	_ Content     = (*client.Machine)(nil)
	_ DriverPacks = (*client.Machine)(nil)
	_ Uploader    = (*client.Machine)(nil)
	_ Multicaster = (*client.Machine)(nil)
)

// Deps are what the disk steps need. Only Content (for the apply steps)
// and Uploader (for Capture image) are required.
type Deps struct {
	Content  Content
	Uploader Uploader
	// Multicast, when set, lets Apply operating system join a multicast
	// session (its Multicast option); nil always downloads by unicast.
	Multicast Multicaster
	// Receive starts a multicast receiver (nil: multicast.Receive with
	// udp-receiver on the interface towards the server).
	Receive func(ctx context.Context, sess multicast.Session) (io.ReadCloser, error)
	// Peers, when set, lets Apply operating system fetch a File image's
	// chunks from other machines deploying it (unless the run sets
	// Peering=false); nil downloads from the server alone. PeerListen is
	// the address of the chunk server it then runs (":0" when empty).
	Peers      Peering
	PeerListen string
	// Disks lists the machine's disks; nil reads /sys (disk.Lister{}).
	// Tests return an image file as the only disk.
	Disks func() ([]DiskInfo, error)
	// Progress is told about an image being written (may be nil).
	Progress func(name string, done, total int64)
	// TempDir holds scratch space (a non-pipable WIM, rdump output);
	// "" means os.TempDir().
	TempDir string
	// MountRoot mounts a Linux root partition read-only and returns its
	// directory and an unmount function; nil mounts ext4 with mount(2) on a
	// block device and reads an image file with debugfs.
	MountRoot func(ctx context.Context, part string) (dir string, unmount func() error, err error)
	// MountNTFS mounts a Windows partition read-write; nil uses the kernel's
	// ntfs3 or ntfs-3g, through a loop device for an image file.
	MountNTFS func(ctx context.Context, part string) (dir string, unmount func() error, err error)
	// EFIVarsDir is where the firmware's variables are (efivarfs); ""
	// is /sys/firmware/efi/efivars, which is not touched when the target
	// is an image file.
	EFIVarsDir string
	// StageWindows puts the Windows agent and its protected state
	// directory on the Windows partition mounted at root, for the answer
	// file's continuation (Prepare operating system calls it after writing
	// the answer file). The agent sets it; without it Prepare operating
	// system fails for Windows, since nothing could continue the run. It
	// returns the staged agent's SHA-256, for the log.
	StageWindows func(ctx context.Context, root string) (string, error)
	// Packs lists the driver packs Inject drivers chooses from and Fetch
	// downloads the chosen one, returning its local path (the agent's
	// content fetcher). TSInDevelopment is true when the running task
	// sequence version is In_Development (it then uses only In_Development
	// packs).
	Packs           DriverPacks
	Fetch           func(ctx context.Context, ref deploy.Ref) (string, error)
	TSInDevelopment bool
}

// DriverPacks lists the DriverPack versions a run may use
// (*client.Machine implements it).
type DriverPacks interface {
	DriverPacks(ctx context.Context) ([]windrivers.Pack, error)
}

// DiskInfo is one disk as Deps.Disks reports it (the fields of
// disk.Disk, portable).
type DiskInfo struct {
	Path      string
	Size      int64
	Bus       string
	Model     string
	Serial    string
	Removable bool
	ReadOnly  bool
	IsBoot    bool
}

// Streamed reports whether option of a step of type typeID is read by the
// step as a stream, so the engine must not fetch it
// (sequence.Engine.StreamOption).
func Streamed(typeID, option string) bool {
	if !strings.EqualFold(option, "Image") {
		return false
	}
	switch strings.ToLower(typeID) {
	case stepdefs.TypeApplyOS, stepdefs.TypeApplyChromeOSFlex, stepdefs.TypeApplyIGEL:
		return true
	}
	return false
}

// Variables Format disk sets.
const (
	VarOSDisk        = "OSDisk"
	VarOSDiskLayout  = "OSDiskLayout"
	VarOSPartition   = "OSPartition"
	VarESPPartition  = "ESPPartition"
	VarBootPartition = "BootPartition"
	VarDiskIndex     = "DiskIndex"
	VarOSImageName   = "OSIMAGENAME"
	VarOSImageVer    = "OSIMAGEVERSION"
)

// LayoutFor turns Format disk's Layout (Windows or Linux, or one of
// disk's layout names such as linux-uefi) and PartitionStyle (Auto, GPT,
// MBR; Auto is GPT when isUEFI) into a disk layout name.
func LayoutFor(layout, style string, isUEFI bool) (string, error) {
	l := strings.ToLower(strings.TrimSpace(layout))
	switch l {
	case "linux-uefi", "linux-bios", "windows-uefi", "windows-bios":
		return l, nil
	case "", "windows", "linux":
	default:
		return "", deploy.Errorf(deploy.KindInvalid, "Format disk: Layout %q is not Windows or Linux", layout)
	}
	if l == "" {
		l = "windows"
	}
	var fw string
	switch strings.ToUpper(strings.TrimSpace(style)) {
	case "", "AUTO":
		fw = map[bool]string{true: "uefi", false: "bios"}[isUEFI]
	case "GPT":
		fw = "uefi"
	case "MBR":
		fw = "bios"
	default:
		return "", deploy.Errorf(deploy.KindInvalid, "Format disk: PartitionStyle %q is not Auto, GPT or MBR", style)
	}
	return l + "-" + fw, nil
}

// catalogueClause is one clause of the catalogue's disk-rule syntax.
var catalogueClause = regexp.MustCompile(`^\s*(size|bus|model|serial|vendor|rotational)\s*(!=|<=|>=|=|<|>|~)\s*(.+?)\s*$`)

// DiskRuleSpec builds a rule in disk.ParseRule's syntax from DiskRule
// (the catalogue's "size>=100G,bus=nvme,model~Samsung*"; disk's own
// syntax is accepted too), DiskIndex (used when DiskRule is empty) and
// AllowRemovable.
func DiskRuleSpec(rule, index, allowRemovable string) (string, error) {
	var terms []string
	rule = strings.TrimSpace(rule)
	if rule != "" {
		for _, c := range strings.Split(rule, ",") {
			if strings.TrimSpace(c) == "" {
				continue
			}
			m := catalogueClause.FindStringSubmatch(c)
			if m == nil {
				terms = append(terms, strings.TrimSpace(c)) // disk's own syntax
				continue
			}
			key, op, val := m[1], m[2], m[3]
			switch key {
			case "size":
				if op == "!=" || op == "~" {
					return "", deploy.Errorf(deploy.KindInvalid, "DiskRule %q: size takes = < > <= >=, not %s", strings.TrimSpace(c), op)
				}
				terms = append(terms, "size"+op+val)
			case "bus", "model":
				if op != "=" && op != "~" {
					return "", deploy.Errorf(deploy.KindInvalid, "DiskRule %q: %s takes = or ~ (glob)", strings.TrimSpace(c), key)
				}
				terms = append(terms, key+"="+val)
			default:
				return "", deploy.Errorf(deploy.KindInvalid, "DiskRule %q: the Linux agent cannot select disks by %s yet (use size, bus or model)", strings.TrimSpace(c), key)
			}
		}
	} else if s := strings.TrimSpace(index); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return "", deploy.Errorf(deploy.KindInvalid, "DiskIndex %q is not a disk number (0 is the first disk)", index)
		}
		terms = append(terms, "index="+strconv.Itoa(n))
	}
	if b, _ := strconv.ParseBool(strings.TrimSpace(allowRemovable)); b {
		terms = append(terms, "removable=true")
	}
	return strings.Join(terms, ","), nil
}

// PartitionSpec names partition n of diskPath the way the disk steps pass
// partitions in variables: the device node on a block device, "IMAGE#N"
// for an image file.
func PartitionSpec(diskPath, device string, n int) string {
	if device != "" {
		return device
	}
	return diskPath + "#" + strconv.Itoa(n)
}

// SplitImageSpec splits "IMAGE#N"; ok is false for a device node.
func SplitImageSpec(spec string) (image string, n int, ok bool) {
	i := strings.LastIndexByte(spec, '#')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(spec[i+1:])
	if err != nil || n < 1 {
		return "", 0, false
	}
	return spec[:i], n, true
}

// ImageFormat is the Apply operating system ImageFormat option.
func ImageFormat(s string) (string, error) {
	switch f := strings.ToLower(strings.TrimSpace(s)); f {
	case "", "auto":
		return "auto", nil
	case "raw", "wim", "tar":
		return f, nil
	}
	return "", deploy.Errorf(deploy.KindInvalid, "ImageFormat %q is not Auto, Raw, WIM or Tar", s)
}

// formatFromName guesses an image's format from its file name (Auto).
func formatFromName(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".wim") || strings.HasSuffix(n, ".esd") || strings.HasSuffix(n, ".swm"):
		return "wim"
	case strings.Contains(n, ".tar") || strings.HasSuffix(n, ".tgz") || strings.HasSuffix(n, ".txz") || strings.HasSuffix(n, ".tzst"):
		return "tar"
	}
	return "raw"
}

// CaptureLevel maps Capture image's Compression to a zstd level: the
// captured form is always a zstd raw image in the Linux boot image (WIM
// capture needs the Windows agent).
func CaptureLevel(s string) (int, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "", "ZSTD", "LZX", "XPRESS", "LZMS":
		// WIM compressions fall back to zstd: documented above.
		return 3, nil
	case "NONE":
		return 1, nil
	}
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 1 && n <= 22 {
		return n, nil
	}
	return 0, deploy.Errorf(deploy.KindInvalid, "Compression %q is not Zstd, None, a WIM compression or a zstd level 1-22", s)
}
