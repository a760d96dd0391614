package agent_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/imprint-osd/imprint/internal/golden"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/agent"
	"github.com/imprint-osd/imprint/internal/sequence"
)

// The testdata/wmi-*.json samples are hand-made, not captured from a
// machine: they follow the documented properties of Win32_ComputerSystem,
// Win32_ComputerSystemProduct, Win32_BIOS, Win32_BaseBoard,
// Win32_SystemEnclosure and Win32_NetworkAdapterConfiguration, in the
// shapes ConvertTo-Json gives (compressed by PowerShell 7; indented, with
// single objects where one was expected in an array and Windows
// PowerShell 5.1's {"value":[…],"Count":n} array wrapper).

func gatherVars(t *testing.T, g agent.Gatherer) map[string]string {
	t.Helper()
	inv, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	vars := sequence.NewVars()
	inv.SetVars(vars.SetInternal, func(n string, items []string) {
		if err := vars.SetList(n, items); err != nil {
			t.Fatal(err)
		}
	})
	out := map[string]string{}
	for _, n := range []string{"Make", "Manufacturer", "Model", "Product", "MakeAlias", "ModelAlias", "SystemAlias",
		"SerialNumber", "UUID", "AssetTag", "BaseBoardProduct", "SystemSku", "CSPVersion", "IsVM", "IsUEFI", "SetupMode",
		"Memory", "Architecture", "OSVersion", "MacAddress001", "MacAddress002", "MacAddress003", "IPAddress001"} {
		out[n] = vars.Value(n)
	}
	return out
}

func wmiSample(t *testing.T, name string) func() ([]byte, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return func() ([]byte, error) { return b, nil }
}

// TestGatherWMIMatchesLinux: the same laptop read through WMI (Windows)
// and through /sys (Linux) gives the same variables, aliases included;
// only the memory differs (WMI's installed size against the kernel's).
func TestGatherWMIMatchesLinux(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"sys/class/dmi/id/sys_vendor":        "LENOVO\n",
		"sys/class/dmi/id/product_name":      "21HMCTO1WW\n",
		"sys/class/dmi/id/product_version":   "ThinkPad T14 Gen 4\n",
		"sys/class/dmi/id/product_serial":    "PF4ABCDE\n",
		"sys/class/dmi/id/product_uuid":      "4c4c4544-0035-3010-8052-b4c04f4d4e31\n",
		"sys/class/dmi/id/board_name":        "21HMCTO1WW\n",
		"sys/class/dmi/id/chassis_asset_tag": "No Asset Tag\n",
		"sys/class/dmi/id/product_sku":       "LENOVO_MT_21HM\n",
		"sys/class/net/enp0s31f6/address":    "8c:16:45:aa:bb:cc\n",
		"sys/class/net/wlp0s20f3/address":    "f4:26:79:11:22:33\n",
		"sys/firmware/efi/fw_platform_size":  "64\n",
		"proc/meminfo":                       "MemTotal:       32498764 kB\n",
	})
	addrs := func() ([]string, error) { return []string{"192.0.2.10"}, nil }
	linux := gatherVars(t, agent.Gatherer{Root: root, GOARCH: "amd64", OSVersion: agent.OSVersionWindows, Addrs: addrs})
	windows := gatherVars(t, agent.Gatherer{WMI: wmiSample(t, "wmi-lenovo.json"), GOARCH: "amd64", OSVersion: agent.OSVersionWindows, Addrs: addrs})
	if linux["Memory"] != "31737" || windows["Memory"] != "32768" {
		t.Errorf("Memory: Linux %s, WMI %s", linux["Memory"], windows["Memory"])
	}
	delete(linux, "Memory")
	delete(windows, "Memory")
	if diff := cmp.Diff(linux, windows); diff != "" {
		t.Errorf("WMI variables differ from Linux's for the same machine (-linux +wmi):\n%s", diff)
	}
	if windows["MakeAlias"] != "Lenovo" || windows["SystemAlias"] != "21HM" || windows["MacAddress002"] != "F4:26:79:11:22:33" {
		t.Errorf("WMI variables = %v", windows)
	}
}

func TestGatherWMIPowerShell51(t *testing.T) {
	got := gatherVars(t, agent.Gatherer{WMI: wmiSample(t, "wmi-hyperv-ps51.json"), GOARCH: "amd64", OSVersion: agent.OSVersionWindows,
		Addrs: func() ([]string, error) { return []string{"192.0.2.20"}, nil }})
	want := map[string]string{
		"Make": "Microsoft Corporation", "Manufacturer": "Microsoft Corporation", "Model": "Virtual Machine", "Product": "Virtual Machine",
		"MakeAlias": "Microsoft", "ModelAlias": "Virtual Machine", "SystemAlias": "Hyper-V UEFI Release v4.1",
		"SerialNumber": "1234-5678-9012-3456-7890-1234-56", "UUID": "5C2E3A1F-8D2B-4C3E-9F11-0A1B2C3D4E5F",
		"AssetTag": "", "BaseBoardProduct": "Virtual Machine", "SystemSku": "", "CSPVersion": "Hyper-V UEFI Release v4.1",
		"IsVM": "True", "IsUEFI": "False", "SetupMode": "BIOS", "Memory": "4095", "Architecture": "x64", "OSVersion": "Windows",
		"MacAddress001": "00:15:5D:01:02:03", "MacAddress002": "", "MacAddress003": "", "IPAddress001": "192.0.2.20",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variables (-want +got):\n%s", diff)
	}
}

func TestGatherWMIErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		wmi     func() ([]byte, error)
		wantErr string
	}{
		"query fails": {func() ([]byte, error) { return nil, errors.New("gather: WMI query: exit status 1") }, "WMI query: exit status 1"},
		"not json":    {func() ([]byte, error) { return []byte("Get-CimInstance : Access denied"), nil }, "WMI output is not the expected JSON"},
		"bad class":   {func() ([]byte, error) { return []byte(`{"BaseBoard":"x"}`), nil }, "Win32_BaseBoard"},
	} {
		_, err := agent.Gatherer{WMI: tc.wmi, Addrs: func() ([]string, error) { return nil, nil }}.Gather()
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.wantErr)
		}
	}
}

// TestGoldenWMICommand pins what Windows runs for the inventory; the
// script travels base64-encoded as UTF-16LE and must decode back whole.
func TestGoldenWMICommand(t *testing.T) {
	prog, args := agent.WMICommand(`C:\Windows`)
	if len(args) != 6 || args[4] != "-EncodedCommand" {
		t.Fatalf("args = %q", args)
	}
	raw, err := base64.StdEncoding.DecodeString(args[5])
	if err != nil || len(raw)%2 != 0 {
		t.Fatalf("encoded command: %v (%d bytes)", err, len(raw))
	}
	u := make([]uint16, len(raw)/2)
	for i := range u {
		u[i] = uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
	}
	script := string(utf16.Decode(u))
	if script != agent.WMIScript {
		t.Error("the encoded command does not decode to WMIScript")
	}
	golden.Check(t, "wmi-command.golden", []byte(fmt.Sprintf("%s %s <WMIScript>\n\n%s", prog, strings.Join(args[:5], " "), script)))
}
