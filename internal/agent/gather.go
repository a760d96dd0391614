package agent

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// OS version names set in OSVERSION.
const (
	OSVersionBootImage = "ImprintPE"
	OSVersionLinux     = "Linux"
	OSVersionWindows   = "Windows"
)

// Inventory is what the agent learns about the machine before a run.
type Inventory struct {
	Make, Model, Product, Version string // sys_vendor, product_name, product_name, product_version
	SerialNumber, UUID            string
	BaseBoardProduct, AssetTag    string
	SystemSKU                     string
	MakeAlias, ModelAlias         string
	SystemAlias                   string
	MACs, IPs                     []string
	IsUEFI, IsVM                  bool
	MemoryMB                      int64
	Architecture                  string // x64, ARM64, x86
	OSVersion                     string
	Disks                         []deploy.Disk // fixed disks under /sys/block
}

// Gatherer reads inventory. Root is the file-system root holding /sys and
// /proc ("" means "/"); tests point it at a fake tree.
type Gatherer struct {
	Root string
	// Addrs lists the machine's IP addresses; nil uses net.Interfaces.
	Addrs func() ([]string, error)
	// GOARCH overrides runtime.GOARCH.
	GOARCH string
	// OSVersion is set as OSVERSION; "" picks Linux or Windows.
	OSVersion string
	// WMI returns the JSON of WMIScript. When set, or on Windows (where
	// nil means RunWMI), the hardware comes from WMI instead of /sys.
	WMI func() ([]byte, error)
}

func (g Gatherer) path(p string) string {
	root := g.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, filepath.FromSlash(p))
}

func (g Gatherer) read(p string) string {
	b, err := os.ReadFile(g.path(p))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Gather reads the inventory. Missing files leave fields empty: a machine
// without SMBIOS still deploys.
func (g Gatherer) Gather() (*Inventory, error) {
	wmi := g.WMI
	if wmi == nil && runtime.GOOS == "windows" {
		wmi = RunWMI
	}
	var inv *Inventory
	if wmi != nil {
		b, err := wmi()
		if err != nil {
			return nil, err
		}
		if inv, err = ParseWMI(b); err != nil {
			return nil, err
		}
	} else {
		var err error
		if inv, err = g.sysInventory(); err != nil {
			return nil, err
		}
	}
	inv.Product = inv.Model
	inv.MakeAlias, inv.ModelAlias, inv.SystemAlias = Aliases(inv.Make, inv.Model, inv.Version, inv.SystemSKU, inv.BaseBoardProduct)
	inv.IsVM = IsVM(inv.Make, inv.Model)
	inv.Architecture = Architecture(g.GOARCH)
	inv.OSVersion = g.OSVersion
	if inv.OSVersion == "" {
		inv.OSVersion = OSVersionLinux
		if runtime.GOOS == "windows" {
			inv.OSVersion = OSVersionWindows
		}
	}
	addrs := g.Addrs
	if addrs == nil {
		addrs = interfaceAddrs
	}
	var err error
	if inv.IPs, err = addrs(); err != nil {
		return nil, fmt.Errorf("gather: ip addresses: %w", err)
	}
	return inv, nil
}

// sysInventory reads the hardware from Linux's /sys and /proc.
func (g Gatherer) sysInventory() (*Inventory, error) {
	dmi := "sys/class/dmi/id/"
	inv := &Inventory{
		Make:             cleanSMBIOS(g.read(dmi + "sys_vendor")),
		Model:            cleanSMBIOS(g.read(dmi + "product_name")),
		Version:          cleanSMBIOS(g.read(dmi + "product_version")),
		SerialNumber:     cleanSMBIOS(g.read(dmi + "product_serial")),
		UUID:             strings.ToUpper(cleanSMBIOS(g.read(dmi + "product_uuid"))),
		BaseBoardProduct: cleanSMBIOS(g.read(dmi + "board_name")),
		AssetTag:         cleanSMBIOS(g.read(dmi + "chassis_asset_tag")),
		SystemSKU:        cleanSMBIOS(g.read(dmi + "product_sku")),
	}
	if inv.Make == "" {
		inv.Make = cleanSMBIOS(g.read(dmi + "board_vendor"))
	}
	if inv.Model == "" {
		inv.Model = inv.BaseBoardProduct
	}
	_, err := os.Stat(g.path("sys/firmware/efi"))
	inv.IsUEFI = err == nil
	inv.MemoryMB = g.memoryMB()
	inv.Disks = g.disks()
	macs, err := g.macs()
	if err != nil {
		return nil, err
	}
	inv.MACs = macs
	return inv, nil
}

// disks lists the block devices that can hold a system: not loop, RAM,
// device-mapper, optical, floppy or network ones, nor empty ones.
func (g Gatherer) disks() []deploy.Disk {
	entries, err := os.ReadDir(g.path("sys/block"))
	if err != nil {
		return nil
	}
	var out []deploy.Disk
	for _, e := range entries {
		n := e.Name()
		if slices.ContainsFunc([]string{"loop", "ram", "zram", "dm-", "sr", "fd", "nbd", "md"}, func(p string) bool { return strings.HasPrefix(n, p) }) {
			continue
		}
		sectors, err := strconv.ParseInt(g.read("sys/block/"+n+"/size"), 10, 64)
		if err != nil || sectors <= 0 {
			continue
		}
		out = append(out, deploy.Disk{Name: deploy.CleanDeviceText(n, deploy.MaxDeviceText), Size: sectors * 512,
			Model: deploy.CleanDeviceText(g.read("sys/block/"+n+"/device/model"), deploy.MaxDeviceText)})
		if len(out) == deploy.MaxDeviceDisks {
			break
		}
	}
	return out
}

// cleanSMBIOS drops placeholder values firmware vendors leave in SMBIOS.
func cleanSMBIOS(s string) string {
	switch strings.ToLower(s) {
	case "", "none", "not specified", "to be filled by o.e.m.", "default string", "system serial number", "not applicable", "0":
		return ""
	}
	return s
}

func (g Gatherer) memoryMB() int64 {
	f, err := os.Open(g.path("proc/meminfo"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}

// macs lists the hardware addresses of the physical-looking interfaces,
// upper case with colons, sorted by interface name.
func (g Gatherer) macs() ([]string, error) {
	dir := g.path("sys/class/net")
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gather: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if n == "lo" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n, "address"))
		if err != nil {
			continue
		}
		mac := strings.ToUpper(strings.TrimSpace(string(b)))
		if len(mac) != 17 || mac == "00:00:00:00:00:00" || seen[mac] {
			continue
		}
		seen[mac] = true
		out = append(out, mac)
	}
	return out, nil
}

func interfaceAddrs() ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 || ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLinkLocalUnicast() {
				out = append(out, ipn.IP.String())
			}
		}
	}
	return out, nil
}

// Architecture maps a GOARCH to DeployR's names ("" means runtime.GOARCH).
func Architecture(goarch string) string {
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	switch goarch {
	case "amd64":
		return "x64"
	case "arm64":
		return "ARM64"
	case "386":
		return "x86"
	}
	return goarch
}

// IsVM reports whether make and model name a virtual machine: Hyper-V
// ("Microsoft Corporation"/"Virtual Machine"), VMware, QEMU, KVM,
// VirtualBox (innotek) and Xen.
func IsVM(make, model string) bool {
	s := strings.ToLower(make + " " + model)
	for _, k := range []string{"virtual machine", "vmware", "qemu", "kvm", "virtualbox", "innotek", "xen"} {
		if strings.Contains(s, k) {
			return true
		}
	}
	return false
}

// Aliases applies the alias rules of DeployR's gather (from PSD's):
// MakeAlias normalises the manufacturer, ModelAlias and SystemAlias pick
// the value driver matching uses for that vendor. version is the SMBIOS
// product version (Win32_ComputerSystemProduct.Version), sku the system
// SKU, board the baseboard product. Unknown makes get "NA" for MakeAlias
// and SystemAlias and the model as ModelAlias.
func Aliases(make, model, version, sku, board string) (makeAlias, modelAlias, systemAlias string) {
	m := strings.ToLower(make)
	has := func(s string) bool { return strings.Contains(m, s) }
	switch {
	case has("microsoft"):
		makeAlias, modelAlias = "Microsoft", model
		systemAlias = sku
		if strings.EqualFold(model, "Virtual Machine") {
			systemAlias = version
		}
	case has("hewlett-packard") || has("hp"):
		makeAlias, modelAlias, systemAlias = "HP", model, board
	case has("dell"):
		makeAlias, modelAlias, systemAlias = "Dell", model, sku
	case has("lenovo"):
		makeAlias, modelAlias = "Lenovo", version
		systemAlias = model
		if len(systemAlias) > 4 {
			systemAlias = systemAlias[:4]
		}
	case has("vmware"):
		makeAlias = "VMWare"
		modelAlias = strings.NewReplacer(" ", "_", ",", "_").Replace(model)
		systemAlias = "NA"
	case has("qemu"):
		makeAlias, modelAlias, systemAlias = "QEMU", model, "NA"
	case has("innotek"):
		makeAlias, modelAlias, systemAlias = "Innotek", model, "NA"
	case has("intel(r) client systems"):
		makeAlias, modelAlias, systemAlias = "Intel(R) Client Systems", version, "NA"
	case has("panasonic"):
		makeAlias, modelAlias, systemAlias = "Panasonic Corporation", model, board
	case has("viglen"):
		makeAlias, modelAlias, systemAlias = "Viglen", model, sku
	case has("azw"):
		makeAlias, modelAlias, systemAlias = "AZW", model, board
	case has("fujitsu"):
		makeAlias, modelAlias, systemAlias = "Fujitsu", model, sku
	case has("acer"):
		makeAlias, modelAlias = "Acer", model
		systemAlias = modelAlias
	default:
		makeAlias, modelAlias, systemAlias = "NA", model, "NA"
	}
	return makeAlias, modelAlias, systemAlias
}

func boolVar(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// SetVars sets the inventory variables under DeployR's names.
func (inv *Inventory) SetVars(set func(name, value string), setList func(name string, items []string)) {
	setup := "BIOS"
	if inv.IsUEFI {
		setup = "UEFI"
	}
	for _, kv := range [][2]string{
		{"Make", inv.Make}, {"Manufacturer", inv.Make}, {"Model", inv.Model}, {"Product", inv.Product},
		{"MakeAlias", inv.MakeAlias}, {"ModelAlias", inv.ModelAlias}, {"SystemAlias", inv.SystemAlias},
		{"SerialNumber", inv.SerialNumber}, {"UUID", inv.UUID}, {"AssetTag", inv.AssetTag},
		{"BaseBoardProduct", inv.BaseBoardProduct}, {"SystemSku", inv.SystemSKU}, {"CSPVersion", inv.Version},
		{"IsVM", boolVar(inv.IsVM)}, {"IsUEFI", boolVar(inv.IsUEFI)}, {"SetupMode", setup},
		{"Memory", strconv.FormatInt(inv.MemoryMB, 10)}, {"Architecture", inv.Architecture},
		{"OSVersion", inv.OSVersion},
	} {
		set(kv[0], kv[1])
	}
	setList("MacAddress", inv.MACs)
	setList("IPAddress", inv.IPs)
}
