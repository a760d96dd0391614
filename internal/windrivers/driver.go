package windrivers

import (
	"fmt"
	"strconv"
	"strings"
)

// Setup classes of boot-critical storage controllers.
var bootClasses = map[string]string{
	"scsiadapter": "{4D36E97B-E325-11CE-BFC1-08002BE10318}",
	"hdc":         "{4D36E96A-E325-11CE-BFC1-08002BE10318}",
}

// Driver is one boot-critical storage driver of an INF: the service that
// must start at boot and the hardware it binds to.
type Driver struct {
	INF          string // file name, lower case (e.g. viostor.inf)
	Class        string
	ClassGUID    string
	Install      string // the install section, the configuration name
	Service      string
	Binary       string // the .sys file name
	Group        string // service load order group
	Type         uint32
	ErrorControl uint32
	HardwareIDs  []string
	Arch         string
}

// BootCritical returns the boot-critical storage drivers of an INF for
// arch (amd64, x86, arm64): none when its class is not SCSIAdapter or HDC.
func BootCritical(name string, f *INF, arch string) ([]Driver, error) {
	class := f.Value("Version", "Class")
	guid := f.Value("Version", "ClassGUID")
	classGUID, ok := bootClasses[strings.ToLower(class)]
	if !ok {
		for c, g := range bootClasses {
			if strings.EqualFold(g, guid) {
				class, classGUID, ok = c, g, true
			}
		}
	}
	if !ok {
		return nil, nil
	}
	dec := "nt" + strings.ToLower(arch)
	// Install section -> hardware ids, in INF order.
	var order []string
	ids := map[string][]string{}
	for _, m := range f.Section("Manufacturer") {
		if len(m.Values) == 0 || m.Values[0] == "" {
			continue
		}
		models := ""
		for _, d := range m.Values[1:] {
			if strings.HasPrefix(strings.ToLower(d), dec) && f.HasSection(m.Values[0]+"."+d) {
				models = m.Values[0] + "." + d
				break
			}
		}
		if models == "" {
			if len(m.Values) > 1 {
				continue // decorated for other architectures only
			}
			models = m.Values[0]
		}
		for _, l := range f.Section(models) {
			if len(l.Values) < 2 {
				continue
			}
			sec := l.Values[0]
			if _, seen := ids[strings.ToLower(sec)]; !seen {
				order = append(order, sec)
			}
			for _, id := range l.Values[1:] {
				if id != "" {
					ids[strings.ToLower(sec)] = append(ids[strings.ToLower(sec)], id)
				}
			}
		}
	}
	var out []Driver
	for _, sec := range order {
		install := sec
		for _, cand := range []string{sec + ".NT" + arch, sec + ".NT", sec} {
			if f.HasSection(cand) {
				install = cand
				break
			}
		}
		svc, svcSec := addService(f, install+".Services")
		if svc == "" {
			continue
		}
		bin := f.Value(svcSec, "ServiceBinary")
		if i := strings.LastIndexAny(bin, `\/`); i >= 0 {
			bin = bin[i+1:]
		}
		if bin == "" {
			return nil, fmt.Errorf("%s: service %s has no ServiceBinary", name, svc)
		}
		d := Driver{INF: strings.ToLower(name), Class: class, ClassGUID: classGUID, Install: sec, Service: svc, Binary: bin,
			Group: f.Value(svcSec, "LoadOrderGroup"), Type: 1, ErrorControl: 1, HardwareIDs: ids[strings.ToLower(sec)], Arch: strings.ToLower(arch)}
		if d.Group == "" {
			d.Group = "SCSI miniport"
		}
		if n, ok := number(f.Value(svcSec, "ServiceType")); ok {
			d.Type = n
		}
		if n, ok := number(f.Value(svcSec, "ErrorControl")); ok {
			d.ErrorControl = n
		}
		out = append(out, d)
	}
	return out, nil
}

// addService finds the install's function driver: the AddService line
// flagged SPSVCINST_ASSOCSERVICE (0x2), else the first.
func addService(f *INF, section string) (name, install string) {
	for _, l := range f.Section(section) {
		if !strings.EqualFold(l.Key, "AddService") || len(l.Values) < 3 {
			continue
		}
		flags, _ := number(l.Values[1])
		if name == "" || flags&2 != 0 {
			name, install = l.Values[0], l.Values[2]
			if flags&2 != 0 {
				break
			}
		}
	}
	return name, install
}

func number(s string) (uint32, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}
