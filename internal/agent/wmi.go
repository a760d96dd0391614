package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"unicode/utf16"
)

// Windows reads the inventory from WMI: WMIScript runs in Windows
// PowerShell 5.1 (present on every Windows) and prints one JSON object;
// ParseWMI, shared with Linux and tested there on hand-made samples of the
// documented class properties, turns it into the same Inventory fields,
// so the variables (and their aliases) are the ones Linux sets.

// WMIScript queries the classes the inventory needs. Remove-TypeData
// keeps Windows PowerShell 5.1 from writing arrays as {"value":…,"Count":…};
// PEFirmwareType is 2 on UEFI firmware, 1 on BIOS.
const WMIScript = `$ErrorActionPreference = 'Stop'
[Console]::OutputEncoding = [Text.Encoding]::UTF8
Remove-TypeData System.Array -ErrorAction SilentlyContinue
$fw = (Get-ItemProperty -Path 'HKLM:\SYSTEM\CurrentControlSet\Control' -Name PEFirmwareType -ErrorAction SilentlyContinue).PEFirmwareType
[pscustomobject]@{
  ComputerSystem = Get-CimInstance Win32_ComputerSystem | Select-Object Manufacturer, Model, SystemSKUNumber, TotalPhysicalMemory
  ComputerSystemProduct = Get-CimInstance Win32_ComputerSystemProduct | Select-Object Vendor, Name, Version, IdentifyingNumber, UUID
  BIOS = Get-CimInstance Win32_BIOS | Select-Object SerialNumber
  BaseBoard = @(Get-CimInstance Win32_BaseBoard | Select-Object Manufacturer, Product)
  SystemEnclosure = @(Get-CimInstance Win32_SystemEnclosure | Select-Object SMBIOSAssetTag, ChassisTypes)
  NetworkAdapterConfiguration = @(Get-CimInstance Win32_NetworkAdapterConfiguration -Filter 'IPEnabled = TRUE' | Sort-Object Index | Select-Object Index, MACAddress, IPAddress)
  FirmwareType = $fw
} | ConvertTo-Json -Depth 4 -Compress
`

// WMICommand returns the program and arguments that run WMIScript with
// Windows PowerShell below systemRoot (%SystemRoot%). The script goes as
// -EncodedCommand (base64 of UTF-16LE), so no quoting can break it.
func WMICommand(systemRoot string) (string, []string) {
	root := strings.TrimRight(systemRoot, `\`)
	if root == "" {
		root = `C:\Windows`
	}
	u := utf16.Encode([]rune(WMIScript))
	b := make([]byte, 0, 2*len(u))
	for _, c := range u {
		b = append(b, byte(c), byte(c>>8))
	}
	return root + `\System32\WindowsPowerShell\v1.0\powershell.exe`,
		[]string{"-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-EncodedCommand", base64.StdEncoding.EncodeToString(b)}
}

// RunWMI runs WMICommand and returns its JSON (the default of
// Gatherer.WMI on Windows).
func RunWMI() ([]byte, error) {
	prog, args := WMICommand(os.Getenv("SystemRoot"))
	var stderr bytes.Buffer
	cmd := exec.CommandContext(context.Background(), prog, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("gather: WMI query: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

type wmiData struct {
	ComputerSystem struct {
		Manufacturer, Model, SystemSKUNumber string
		TotalPhysicalMemory                  json.RawMessage
	}
	ComputerSystemProduct struct{ Vendor, Name, Version, IdentifyingNumber, UUID string }
	BIOS                  struct{ SerialNumber string }
	BaseBoard             json.RawMessage
	SystemEnclosure       json.RawMessage
	Adapters              json.RawMessage `json:"NetworkAdapterConfiguration"`
	FirmwareType          json.RawMessage
}

// many reads a class that may come as one object, an array, or Windows
// PowerShell 5.1's {"value":[…],"Count":n}.
func many[T any](raw json.RawMessage) ([]T, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '[' {
		var out []T
		err := json.Unmarshal(raw, &out)
		return out, err
	}
	var wrapped struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &wrapped); err == nil && len(bytes.TrimSpace(wrapped.Value)) > 0 && bytes.TrimSpace(wrapped.Value)[0] == '[' {
		return many[T](wrapped.Value)
	}
	var one T
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, err
	}
	return []T{one}, nil
}

// number reads a JSON number or a string holding one; 0 when absent.
func number(raw json.RawMessage) int64 {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return int64(n)
}

// ParseWMI reads WMIScript's output into the hardware fields of an
// Inventory (the same ones Linux reads from /sys): make and model from
// Win32_ComputerSystem (else Win32_BaseBoard), version, UUID from
// Win32_ComputerSystemProduct, serial from Win32_BIOS, asset tag from
// Win32_SystemEnclosure, MACs of the IP-enabled adapters, UEFI from
// PEFirmwareType. Aliases, IsVM, IPs and the OS fields are left to Gather.
func ParseWMI(b []byte) (*Inventory, error) {
	var d wmiData
	if err := json.Unmarshal(bytes.TrimPrefix(bytes.TrimSpace(b), []byte("\ufeff")), &d); err != nil {
		return nil, fmt.Errorf("gather: WMI output is not the expected JSON: %w", err)
	}
	type board struct{ Manufacturer, Product string }
	boards, err := many[board](d.BaseBoard)
	if err != nil {
		return nil, fmt.Errorf("gather: Win32_BaseBoard: %w", err)
	}
	type enclosure struct{ SMBIOSAssetTag string }
	encl, err := many[enclosure](d.SystemEnclosure)
	if err != nil {
		return nil, fmt.Errorf("gather: Win32_SystemEnclosure: %w", err)
	}
	type adapter struct{ MACAddress string }
	nics, err := many[adapter](d.Adapters)
	if err != nil {
		return nil, fmt.Errorf("gather: Win32_NetworkAdapterConfiguration: %w", err)
	}
	cs, csp := d.ComputerSystem, d.ComputerSystemProduct
	inv := &Inventory{
		Make:         cleanSMBIOS(strings.TrimSpace(cs.Manufacturer)),
		Model:        cleanSMBIOS(strings.TrimSpace(cs.Model)),
		Version:      cleanSMBIOS(strings.TrimSpace(csp.Version)),
		SerialNumber: cleanSMBIOS(strings.TrimSpace(d.BIOS.SerialNumber)),
		UUID:         strings.ToUpper(cleanSMBIOS(strings.TrimSpace(csp.UUID))),
		SystemSKU:    cleanSMBIOS(strings.TrimSpace(cs.SystemSKUNumber)),
		MemoryMB:     number(cs.TotalPhysicalMemory) / (1 << 20),
		IsUEFI:       number(d.FirmwareType) == 2,
	}
	if inv.SerialNumber == "" {
		inv.SerialNumber = cleanSMBIOS(strings.TrimSpace(csp.IdentifyingNumber))
	}
	if len(boards) > 0 {
		inv.BaseBoardProduct = cleanSMBIOS(strings.TrimSpace(boards[0].Product))
		if inv.Make == "" {
			inv.Make = cleanSMBIOS(strings.TrimSpace(boards[0].Manufacturer))
		}
	}
	if inv.Model == "" {
		inv.Model = inv.BaseBoardProduct
	}
	if len(encl) > 0 {
		inv.AssetTag = cleanSMBIOS(strings.TrimSpace(encl[0].SMBIOSAssetTag))
	}
	seen := map[string]bool{}
	for _, n := range nics {
		mac := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(n.MACAddress), "-", ":"))
		if len(mac) != 17 || mac == "00:00:00:00:00:00" || seen[mac] {
			continue
		}
		seen[mac] = true
		inv.MACs = append(inv.MACs, mac)
	}
	return inv, nil
}
