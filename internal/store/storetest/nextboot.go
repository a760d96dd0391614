package storetest

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// testBootState: the boot script's one read gives the first id's
// next-boot choice (either id matches, a choice beats any run) and the
// state of the newest run under any of the ids.
func testBootState(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	t0 := base()
	for _, r := range []*deploy.Run{
		newRun("uuid-a", "ts", deploy.RunFailed, t0),
		newRun("mac-a", "ts", deploy.RunSucceeded, t0.Add(time.Minute)),
		newRun("uuid-a", "ts", deploy.RunRunning, t0.Add(-time.Hour)),
		newRun("other", "ts", deploy.RunCanceled, t0.Add(time.Hour)),
		newRun("uuid-c", "ts", deploy.RunSucceeded, t0),
	} {
		must(t, "CreateRun", s.CreateRun(ctx(t), r))
	}
	for id, nb := range map[string]deploy.NextBoot{"uuid-b": deploy.NextBootDeploy, "mac-b": deploy.NextBootLocal, "mac-c": deploy.NextBootDeploy} {
		must(t, "UpsertDevice", s.UpsertDevice(ctx(t), &deploy.Device{ID: id}))
		must(t, "SetNextBoot", s.SetNextBoot(ctx(t), id, nb))
	}
	auto := deploy.NextBootAuto
	tests := []struct {
		ids  []string
		want deploy.BootState
	}{
		{[]string{"uuid-a"}, deploy.BootState{NextBoot: auto, LastRun: deploy.RunFailed}},
		{[]string{"mac-a"}, deploy.BootState{NextBoot: auto, LastRun: deploy.RunSucceeded}},
		{[]string{"uuid-a", "mac-a"}, deploy.BootState{NextBoot: auto, LastRun: deploy.RunSucceeded}}, // the newer of the two
		{[]string{"mac-a", "uuid-a"}, deploy.BootState{NextBoot: auto, LastRun: deploy.RunSucceeded}},
		{[]string{"uuid-a", "mac-a", "other"}, deploy.BootState{NextBoot: auto, LastRun: deploy.RunCanceled}},
		{[]string{"nobody"}, deploy.BootState{NextBoot: auto}},
		{nil, deploy.BootState{NextBoot: auto}},
		// Choices: either id matches, the first id's wins, a run does
		// not hide it.
		{[]string{"uuid-b"}, deploy.BootState{NextBoot: deploy.NextBootDeploy}},
		{[]string{"uuid-x", "mac-b"}, deploy.BootState{NextBoot: deploy.NextBootLocal}},
		{[]string{"uuid-b", "mac-b"}, deploy.BootState{NextBoot: deploy.NextBootDeploy}},
		{[]string{"mac-b", "uuid-b"}, deploy.BootState{NextBoot: deploy.NextBootLocal}},
		{[]string{"uuid-c", "mac-c"}, deploy.BootState{NextBoot: deploy.NextBootDeploy, LastRun: deploy.RunSucceeded}},
		{[]string{"uuid-a", "mac-b", "other"}, deploy.BootState{NextBoot: deploy.NextBootLocal, LastRun: deploy.RunCanceled}},
	}
	for _, tc := range tests {
		got, err := s.BootState(ctx(t), tc.ids...)
		must(t, "BootState", err)
		if got != tc.want {
			t.Errorf("BootState(%q) = %+v, want %+v", tc.ids, got, tc.want)
		}
	}
}

// testNextBoots: choices are set, replaced, listed and removed (auto) one
// device at a time; bad input is refused and changes nothing.
func testNextBoots(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	list := func(want map[string]deploy.NextBoot) {
		t.Helper()
		got, err := s.NextBoots(ctx(t))
		must(t, "NextBoots", err)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("NextBoots (-want +got):\n%s", d)
		}
	}
	list(map[string]deploy.NextBoot{})
	for _, id := range []string{"dev-1", "mac-52-54-00-12-34-56"} {
		must(t, "UpsertDevice", s.UpsertDevice(ctx(t), &deploy.Device{ID: id}))
	}
	must(t, "SetNextBoot deploy", s.SetNextBoot(ctx(t), "dev-1", deploy.NextBootDeploy))
	must(t, "SetNextBoot local", s.SetNextBoot(ctx(t), "mac-52-54-00-12-34-56", deploy.NextBootLocal))
	list(map[string]deploy.NextBoot{"dev-1": deploy.NextBootDeploy, "mac-52-54-00-12-34-56": deploy.NextBootLocal})

	must(t, "SetNextBoot again", s.SetNextBoot(ctx(t), "dev-1", deploy.NextBootLocal))
	// The device seen again keeps its choice.
	must(t, "UpsertDevice again", s.UpsertDevice(ctx(t), &deploy.Device{ID: "dev-1", Name: "pc-01"}))
	must(t, "SetNextBoot auto", s.SetNextBoot(ctx(t), "mac-52-54-00-12-34-56", deploy.NextBootAuto))
	must(t, "SetNextBoot auto twice", s.SetNextBoot(ctx(t), "mac-52-54-00-12-34-56", deploy.NextBootAuto))
	list(map[string]deploy.NextBoot{"dev-1": deploy.NextBootLocal})

	wantKind(t, "SetNextBoot sideways", s.SetNextBoot(ctx(t), "dev-1", "sideways"), deploy.KindInvalid)
	wantKind(t, "SetNextBoot empty", s.SetNextBoot(ctx(t), "dev-1", ""), deploy.KindInvalid)
	wantKind(t, "SetNextBoot of an unknown device", s.SetNextBoot(ctx(t), "nobody", deploy.NextBootDeploy), deploy.KindNotFound)
	list(map[string]deploy.NextBoot{"dev-1": deploy.NextBootLocal})
}

// NextBootSettingKey is the setting that held every device's next-boot
// choice before they had their own table (schema version
// NextBootTableVersion).
const NextBootSettingKey = "device.nextboot"

// NextBootTableVersion is the migration that moves the setting's
// choices into their table.
const NextBootTableVersion = 5

// NextBootMigrations are old "device.nextboot" settings and the choices
// each must become.
var NextBootMigrations = []struct {
	Name    string
	Setting []byte
	Want    map[string]deploy.NextBoot
}{
	{"choices", []byte(`{"4c4c4544-0042-3510-8052-b4c04f4e3332":"deploy","mac-52-54-00-12-34-56":"local",` +
		`"Mixed-Case":"local","odd":"sideways","num":1}`),
		map[string]deploy.NextBoot{"4c4c4544-0042-3510-8052-b4c04f4e3332": deploy.NextBootDeploy,
			"mac-52-54-00-12-34-56": deploy.NextBootLocal, "mixed-case": deploy.NextBootLocal}},
	{"unreadable", []byte(`{"dev-1":`), map[string]deploy.NextBoot{}},
	{"not an object", []byte(`["deploy"]`), map[string]deploy.NextBoot{}},
	{"not UTF-8", []byte{'{', 0xff, 0xfe, '}'}, map[string]deploy.NextBoot{}},
}

// CheckNextBootsMigrated fails t unless s (opened on a database that held
// the setting of NextBootMigrations[i]) holds the choices it must have
// become, the boot script reads them, and the setting is gone.
func CheckNextBootsMigrated(t *testing.T, s deploy.Store, i int) {
	t.Helper()
	tc := NextBootMigrations[i]
	got, err := s.NextBoots(ctx(t))
	must(t, "NextBoots", err)
	if d := cmp.Diff(tc.Want, got); d != "" {
		t.Errorf("choices after the migration (-want +got):\n%s", d)
	}
	for id, want := range tc.Want {
		bs, err := s.BootState(ctx(t), "00000000-0000-0000-0000-000000000000", id)
		must(t, "BootState", err)
		if bs.NextBoot != want {
			t.Errorf("BootState(%s) after the migration = %+v, want next boot %s", id, bs, want)
		}
	}
	if _, err := s.Setting(ctx(t), NextBootSettingKey); !deploy.IsNotFound(err) {
		t.Errorf("setting %s after the migration: err = %v, want not found", NextBootSettingKey, err)
	}
}

// MigrationsUpTo returns the migrations of fsys (files NNNN_name.sql at
// its root) up to version: what an older imprint applied.
func MigrationsUpTo(fsys fs.FS, version int) (fs.FS, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	out := fstest.MapFS{}
	for _, n := range names {
		num, _, _ := strings.Cut(n, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", n, err)
		}
		if v > version {
			continue
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		out[n] = &fstest.MapFile{Data: b}
	}
	return out, nil
}
