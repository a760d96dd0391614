package deploy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
)

func TestDeviceNormalize(t *testing.T) {
	const u = "4c4c4544-0042-3010-8052-b4c04f4e4432"
	tests := map[string]struct {
		in      deploy.Device
		want    deploy.Device
		invalid []string // fields refused
	}{
		"canonical":        {in: deploy.Device{UUID: u}, want: deploy.Device{UUID: u}},
		"upper in braces":  {in: deploy.Device{UUID: "{4C4C4544-0042-3010-8052-B4C04F4E4432}"}, want: deploy.Device{UUID: u}},
		"space inside":     {in: deploy.Device{UUID: "4C4C454400423010 8052B4C04F4E4432"}, invalid: []string{"uuid"}},
		"bare hex":         {in: deploy.Device{UUID: "4c4c454400423010" + "8052b4c04f4e4432"}, want: deploy.Device{UUID: u}},
		"escape in uuid":   {in: deploy.Device{UUID: u + "\x1b[2J"}, invalid: []string{"uuid"}},
		"MACs normalised":  {in: deploy.Device{MACs: []string{"52-54-00-AB-CD-EF"}}, want: deploy.Device{MACs: []string{"52:54:00:ab:cd:ef"}}},
		"bad MAC":          {in: deploy.Device{MACs: []string{"52:54:00:ab:cd:ef", "zz"}}, invalid: []string{"macs[1]"}},
		"too many MACs":    {in: deploy.Device{MACs: make([]string, deploy.MaxDeviceMACs+1)}, invalid: []string{"macs"}},
		"unicode model":    {in: deploy.Device{Model: "Précision 5680"}, want: deploy.Device{Model: "Précision 5680"}},
		"newline in make":  {in: deploy.Device{Make: "Dell\nInc"}, invalid: []string{"make"}},
		"bidi in serial":   {in: deploy.Device{SerialNumber: "AB\u202eCD"}, invalid: []string{"serialNumber"}},
		"C1 in name":       {in: deploy.Device{Name: "pc\u009b2J"}, invalid: []string{"name"}},
		"zero width":       {in: deploy.Device{Name: "pc\u200b1"}, invalid: []string{"name"}},
		"long serial":      {in: deploy.Device{SerialNumber: strings.Repeat("s", deploy.MaxDeviceSerial+1)}, invalid: []string{"serialNumber"}},
		"invalid UTF-8":    {in: deploy.Device{Model: "x\xff"}, invalid: []string{"model"}},
		"several problems": {in: deploy.Device{UUID: "x", Model: "\a"}, invalid: []string{"uuid", "model"}},
		"disks":            {in: deploy.Device{Disks: []deploy.Disk{{Name: "nvme0n1", Model: "Samsung", Size: 1 << 40}}}, want: deploy.Device{Disks: []deploy.Disk{{Name: "nvme0n1", Model: "Samsung", Size: 1 << 40}}}},
		"escape in disk":   {in: deploy.Device{Disks: []deploy.Disk{{Name: "sda", Model: "x\x1b[2J"}}}, invalid: []string{"disks[0].model"}},
		"negative disk":    {in: deploy.Device{Disks: []deploy.Disk{{Name: "sda", Size: -1}}}, invalid: []string{"disks[0].size"}},
		"too many disks":   {in: deploy.Device{Disks: make([]deploy.Disk, deploy.MaxDeviceDisks+1)}, invalid: []string{"disks"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := tc.in
			err := d.Normalize()
			if tc.invalid == nil {
				if err != nil {
					t.Fatalf("Normalize: %v", err)
				}
				if diff := cmp.Diff(tc.want, d); diff != "" {
					t.Errorf("normalised (-want +got):\n%s", diff)
				}
				return
			}
			if deploy.ErrorKind(err) != deploy.KindInvalid {
				t.Fatalf("Normalize = %v, want KindInvalid", err)
			}
			var de *deploy.Error
			errors.As(err, &de)
			var got []string
			for _, f := range de.Fields {
				got = append(got, f.Field)
			}
			if diff := cmp.Diff(tc.invalid, got); diff != "" {
				t.Errorf("refused fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCleanDeviceText(t *testing.T) {
	for in, want := range map[string]string{
		"  Dell Inc.  ":          "Dell Inc.",
		"Dell\x1b[2J Inc.":       "Dell[2J Inc.",
		"AB\u202eCD\n":           "ABCD",
		"x\xffy":                 "xy",
		strings.Repeat("é", 100): strings.Repeat("é", 64),
	} {
		got := deploy.CleanDeviceText(in, 128)
		if got != want {
			t.Errorf("CleanDeviceText(%q) = %q, want %q", in, got, want)
		}
		d := deploy.Device{Model: got}
		if err := d.Normalize(); err != nil {
			t.Errorf("cleaned %q is refused: %v", got, err)
		}
	}
}
