package windrivers_test

import (
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/windrivers"
)

func TestMatchPackOrder(t *testing.T) {
	const (
		active = deploy.StatusActive
		dev    = deploy.StatusInDevelopment
		old    = deploy.StatusDeprecated
	)
	pack := func(id string, no int, st deploy.Status, mk, md string) windrivers.Pack {
		return windrivers.Pack{ID: id, Name: id, VersionNo: no, Status: st, Manufacturer: mk, Model: md}
	}
	// A Lenovo: make "LENOVO", model (machine type) "20XW0026US", version
	// "ThinkPad X1 Carbon Gen 9"; gather's aliases are MakeAlias "Lenovo",
	// ModelAlias the version, SystemAlias the first four of the model.
	lenovo := windrivers.Machine{Make: "LENOVO", Model: "20XW0026US",
		MakeAlias: "Lenovo", ModelAlias: "ThinkPad X1 Carbon Gen 9", SystemAlias: "20XW"}
	all := []windrivers.Pack{
		pack("aliases", 1, active, "lenovo", "THINKPAD X1 CARBON GEN 9"),
		pack("make-model", 1, active, "LENOVO", "20XW0026US"),
		pack("make-system", 1, active, "Lenovo ", "20xw"), // "Lenovo" is also MakeAlias: MAKE+SYSTEMALIAS is tried first
		pack("dev-aliases", 1, dev, "Lenovo", "ThinkPad X1 Carbon Gen 9"),
	}
	drop := func(ids ...string) []windrivers.Pack {
		var out []windrivers.Pack
	next:
		for _, p := range all {
			for _, id := range ids {
				if p.ID == id {
					continue next
				}
			}
			out = append(out, p)
		}
		return out
	}
	tests := []struct {
		name     string
		packs    []windrivers.Pack
		m        windrivers.Machine
		tsDev    bool
		wantID   string
		wantRule string
	}{
		{"aliases first", all, lenovo, false, "aliases", "MAKEALIAS+MODELALIAS"},
		{"then make and model", drop("aliases"), lenovo, false, "make-model", "MAKE+MODEL"},
		{"then make and system alias, case and spaces ignored", drop("aliases", "make-model"), lenovo, false, "make-system", "MAKE+SYSTEMALIAS"},
		{"Active before In_Development on any rule", drop("aliases"), lenovo, false, "make-model", "MAKE+MODEL"},
		{"In_Development when no Active version matches", drop("aliases", "make-model", "make-system"), lenovo, false, "dev-aliases", "MAKEALIAS+MODELALIAS"},
		{"an In_Development sequence takes only In_Development packs", all, lenovo, true, "dev-aliases", "MAKEALIAS+MODELALIAS"},
		{"an In_Development sequence and no In_Development pack", drop("dev-aliases"), lenovo, true, "", ""},
		{"Deprecated never", []windrivers.Pack{pack("old", 3, old, "LENOVO", "20XW0026US")}, lenovo, false, "", ""},
		{"no match", all, windrivers.Machine{Make: "Dell Inc.", Model: "Latitude 7440", MakeAlias: "Dell", ModelAlias: "Latitude 7440", SystemAlias: "0C0B"}, false, "", ""},
		{"empty aliases match nothing", []windrivers.Pack{pack("blank", 1, active, "", "")}, windrivers.Machine{}, false, "", ""},
		{"the highest version of the matching ones",
			[]windrivers.Pack{pack("q", 1, active, "QEMU", "Standard PC"), pack("q", 3, active, "qemu", "standard pc"), pack("q", 2, active, "QEMU", "Standard PC")},
			windrivers.Machine{Make: "QEMU", Model: "Standard PC", MakeAlias: "QEMU", ModelAlias: "Standard PC", SystemAlias: "NA"}, false, "q", "MAKEALIAS+MODELALIAS"},
		{"make and system alias",
			[]windrivers.Pack{pack("hp", 1, active, "HP", "8870")},
			windrivers.Machine{Make: "HP", Model: "HP EliteBook 840 G8", MakeAlias: "HP", ModelAlias: "HP EliteBook 840 G8 Notebook PC", SystemAlias: "8870"}, false, "hp", "MAKE+SYSTEMALIAS"},
		{"make alias with system alias when the make differs",
			[]windrivers.Pack{pack("hp", 1, active, "HP", "8870")},
			windrivers.Machine{Make: "Hewlett-Packard", Model: "HP EliteBook 840 G8", MakeAlias: "HP", ModelAlias: "HP EliteBook 840 G8 Notebook PC", SystemAlias: "8870"}, false, "hp", "MAKEALIAS+SYSTEMALIAS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := windrivers.MatchPack(tt.packs, tt.m, tt.tsDev)
			if ok != (tt.wantID != "") {
				t.Fatalf("MatchPack matched=%v (%+v), want %q", ok, got, tt.wantID)
			}
			if got.Pack.ID != tt.wantID || got.Rule != tt.wantRule {
				t.Errorf("MatchPack = %s by %s, want %s by %s", got.Pack.ID, got.Rule, tt.wantID, tt.wantRule)
			}
		})
	}
	got, _ := windrivers.MatchPack([]windrivers.Pack{pack("q", 1, active, "QEMU", "x"), pack("q", 3, active, "QEMU", "x")},
		windrivers.Machine{MakeAlias: "QEMU", ModelAlias: "x"}, false)
	if got.Pack.VersionNo != 3 {
		t.Errorf("chose version %d, want the highest (3)", got.Pack.VersionNo)
	}
}
