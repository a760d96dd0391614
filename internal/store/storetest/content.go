package storetest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// hash returns a distinct valid SHA-256 hex string per letter.
func hash(c byte) string { return strings.Repeat(string(c), 64) }

func newItem(name string, typ deploy.ContentType) *deploy.ContentItem {
	return &deploy.ContentItem{Name: name, Type: typ, Purpose: deploy.PurposeOther, Tags: []string{}}
}

func testContentItemRoundTrip(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	var c deploy.ContentItem
	must(t, "decode item", json.Unmarshal([]byte(`{
		"name": "Office", "description": "apps", "contentItemType": "File",
		"contentItemPurpose": "Application", "tags": ["a", "b"], "readOnly": true,
		"createdDate": 1700000000, "lastModifiedDate": 1700000001,
		"futureField": {"nested": [1, 2]}}`), &c))
	must(t, "CreateContentItem", s.CreateContentItem(ctx(t), &c))
	checkGUID(t, "item ID", c.ID)

	got, err := s.ContentItem(ctx(t), c.ID)
	must(t, "ContentItem", err)
	want := c
	want.Versions = []deploy.ContentVersion{}
	sameJSON(t, "stored item", &want, got)

	v, err := s.AddContentVersion(ctx(t), c.ID, &deploy.ContentVersion{
		Status: deploy.StatusActive, Description: deploy.StrPtr("first"), ContentSize: 42,
		InstallationCommandLine: deploy.StrPtr("setup.exe /q"), InstallationSuccessCodes: deploy.StrPtr("0,3010"),
		InstallationDependencies: []string{"x:1"}, Tags: []string{"t"}, SHA256: hash('a'),
		CreatedDate: 1700000100, LastModifiedDate: 1700000100,
	})
	must(t, "AddContentVersion", err)
	checkGUID(t, "version ID", v.ID)
	if v.ContentItemID != c.ID || v.VersionNo != 1 {
		t.Errorf("added version = %s:%d, want %s:1", v.ContentItemID, v.VersionNo, c.ID)
	}
	got, err = s.ContentItem(ctx(t), c.ID)
	must(t, "ContentItem", err)
	if len(got.Versions) != 1 || got.VersionsCount != 1 {
		t.Fatalf("item has %d versions, versionsCount %d; want 1 and 1", len(got.Versions), got.VersionsCount)
	}
	sameJSON(t, "stored version", v, &got.Versions[0])
	if got.LastModifiedDate < c.LastModifiedDate {
		t.Errorf("item lastModifiedDate went back: %d < %d", got.LastModifiedDate, c.LastModifiedDate)
	}
	if got.Extra["futureField"] == nil {
		t.Errorf("unknown item field lost: %+v", got.Extra)
	}

	withVersions := newItem("ignores versions", deploy.ContentFile)
	withVersions.Versions = []deploy.ContentVersion{{VersionNo: 1}, {VersionNo: 2}}
	withVersions.VersionsCount = 2
	must(t, "CreateContentItem with versions", s.CreateContentItem(ctx(t), withVersions))
	got, err = s.ContentItem(ctx(t), withVersions.ID)
	must(t, "ContentItem", err)
	if len(got.Versions) != 0 || got.VersionsCount != 0 {
		t.Errorf("CreateContentItem stored %d versions (count %d), want it to ignore them", len(got.Versions), got.VersionsCount)
	}
}

func testContentNotFound(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	item := newItem("present", deploy.ContentFile)
	must(t, "CreateContentItem", s.CreateContentItem(ctx(t), item))
	_, err := s.AddContentVersion(ctx(t), item.ID, &deploy.ContentVersion{SHA256: hash('a')})
	must(t, "AddContentVersion", err)

	missing := "00000000-0000-0000-0000-00000000dead"
	calls := map[string]func() error{
		"ContentItem": func() error { _, err := s.ContentItem(ctx(t), missing); return err },
		"UpdateContentItem": func() error {
			return s.UpdateContentItem(ctx(t), &deploy.ContentItem{ID: missing, Name: "x"})
		},
		"DeleteContentItem": func() error { _, err := s.DeleteContentItem(ctx(t), missing); return err },
		"AddContentVersion to missing item": func() error {
			_, err := s.AddContentVersion(ctx(t), missing, &deploy.ContentVersion{})
			return err
		},
		"UpdateContentVersion of missing item": func() error {
			return s.UpdateContentVersion(ctx(t), &deploy.ContentVersion{ContentItemID: missing, VersionNo: 1})
		},
		"UpdateContentVersion of missing version": func() error {
			return s.UpdateContentVersion(ctx(t), &deploy.ContentVersion{ContentItemID: item.ID, VersionNo: 9})
		},
		"DeleteContentVersion of missing item": func() error {
			_, err := s.DeleteContentVersion(ctx(t), missing, 1)
			return err
		},
		"DeleteContentVersion of missing version": func() error {
			_, err := s.DeleteContentVersion(ctx(t), item.ID, 9)
			return err
		},
	}
	for name, call := range calls {
		wantKind(t, name, call(), deploy.KindNotFound)
	}
}

func testContentConflicts(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	item := newItem("one", deploy.ContentFile)
	must(t, "CreateContentItem", s.CreateContentItem(ctx(t), item))
	dup := newItem("other name", deploy.ContentFile)
	dup.ID = item.ID
	wantKind(t, "CreateContentItem with an existing id", s.CreateContentItem(ctx(t), dup), deploy.KindConflict)

	v, err := s.AddContentVersion(ctx(t), item.ID, &deploy.ContentVersion{VersionNo: 3})
	must(t, "AddContentVersion 3", err)
	_, err = s.AddContentVersion(ctx(t), item.ID, &deploy.ContentVersion{VersionNo: 3})
	wantKind(t, "AddContentVersion with an existing number", err, deploy.KindConflict)
	_, err = s.AddContentVersion(ctx(t), item.ID, &deploy.ContentVersion{ID: v.ID})
	wantKind(t, "AddContentVersion with an existing version id", err, deploy.KindConflict)

	got, err := s.ContentItem(ctx(t), item.ID)
	must(t, "ContentItem", err)
	if got.Name != "one" || len(got.Versions) != 1 {
		t.Errorf("after failed writes: name %q, %d versions; want \"one\", 1", got.Name, len(got.Versions))
	}
}

func testContentVersionNumbering(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	item := newItem("numbered", deploy.ContentFolder)
	must(t, "CreateContentItem", s.CreateContentItem(ctx(t), item))
	steps := []struct {
		give, want int
	}{
		{0, 1}, {0, 2}, {5, 5}, {0, 6}, {3, 3}, {0, 7},
	}
	for _, st := range steps {
		v, err := s.AddContentVersion(ctx(t), item.ID, &deploy.ContentVersion{VersionNo: st.give})
		must(t, "AddContentVersion", err)
		if v.VersionNo != st.want {
			t.Errorf("AddContentVersion(VersionNo %d) numbered %d, want %d", st.give, v.VersionNo, st.want)
		}
	}
	got, err := s.ContentItem(ctx(t), item.ID)
	must(t, "ContentItem", err)
	var nos []int
	for _, v := range got.Versions {
		nos = append(nos, v.VersionNo)
		if v.ContentItemID != item.ID {
			t.Errorf("version %d has contentItemId %q, want %q", v.VersionNo, v.ContentItemID, item.ID)
		}
	}
	if d := cmp.Diff([]int{1, 2, 3, 5, 6, 7}, nos); d != "" {
		t.Errorf("version order (-want +got):\n%s", d)
	}
	if got.VersionsCount != 6 {
		t.Errorf("versionsCount = %d, want 6", got.VersionsCount)
	}

	if _, err := s.DeleteContentVersion(ctx(t), item.ID, 7); err != nil {
		t.Fatal(err)
	}
	v, err := s.AddContentVersion(ctx(t), item.ID, &deploy.ContentVersion{})
	must(t, "AddContentVersion after delete", err)
	if v.VersionNo != 7 {
		t.Errorf("after deleting the highest version the next is %d, want 7", v.VersionNo)
	}
}

func testContentUpdates(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	item := newItem("before", deploy.ContentFile)
	must(t, "CreateContentItem", s.CreateContentItem(ctx(t), item))
	v, err := s.AddContentVersion(ctx(t), item.ID, &deploy.ContentVersion{
		Status: deploy.StatusInDevelopment, SHA256: hash('a'), ContentSize: 10,
	})
	must(t, "AddContentVersion", err)

	edit := *item
	edit.Name = "after"
	edit.Tags = []string{"new"}
	edit.Versions = nil
	must(t, "UpdateContentItem", s.UpdateContentItem(ctx(t), &edit))
	got, err := s.ContentItem(ctx(t), item.ID)
	must(t, "ContentItem", err)
	if got.Name != "after" || !cmp.Equal(got.Tags, []string{"new"}) {
		t.Errorf("item metadata = %q %v, want \"after\" [new]", got.Name, got.Tags)
	}
	if len(got.Versions) != 1 || got.VersionsCount != 1 {
		t.Errorf("UpdateContentItem changed versions: %d versions, versionsCount %d", len(got.Versions), got.VersionsCount)
	}

	upd := *v
	upd.Status = deploy.StatusActive
	upd.DriverModel = deploy.StrPtr("T14")
	upd.ContentSize = 999 // not mutable: ignored
	must(t, "UpdateContentVersion", s.UpdateContentVersion(ctx(t), &upd))
	got, err = s.ContentItem(ctx(t), item.ID)
	must(t, "ContentItem", err)
	gv := got.Versions[0]
	if gv.Status != deploy.StatusActive || deploy.Str(gv.DriverModel) != "T14" || gv.ContentSize != 10 || gv.SHA256 != hash('a') {
		t.Errorf("updated version = status %s model %q size %d sha %s; want Active, T14, 10, unchanged hash",
			gv.Status, deploy.Str(gv.DriverModel), gv.ContentSize, gv.SHA256)
	}

	bad := gv
	bad.SHA256 = hash('b')
	wantKind(t, "UpdateContentVersion changing sha256", s.UpdateContentVersion(ctx(t), &bad), deploy.KindInvalid)
	if used, err := s.BlobInUse(ctx(t), hash('b')); err != nil || used {
		t.Errorf("BlobInUse(rejected hash) = %v, %v; want false", used, err)
	}
}

func testContentInvalid(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	file := newItem("file", deploy.ContentFile)
	must(t, "CreateContentItem", s.CreateContentItem(ctx(t), file))
	cases := map[string]*deploy.ContentVersion{
		"uppercase sha256": {SHA256: strings.ToUpper(hash('a'))},
		"short sha256":     {SHA256: "abc"},
		"manifest file without sha256": {Manifest: &deploy.Manifest{Files: []deploy.ManifestFile{
			{Path: "a.txt", SHA256: hash('a')}, {Path: "b.txt"},
		}}},
		"negative version number": {VersionNo: -1},
	}
	for name, v := range cases {
		_, err := s.AddContentVersion(ctx(t), file.ID, v)
		wantKind(t, name, err, deploy.KindInvalid)
	}
	got, err := s.ContentItem(ctx(t), file.ID)
	must(t, "ContentItem", err)
	if len(got.Versions) != 0 {
		t.Errorf("invalid versions were stored: %d", len(got.Versions))
	}
}

// testContentOrphans shares blobs between two versions of one item and a
// folder of another, then deletes step by step: a hash is an orphan only
// once nothing references it.
func testContentOrphans(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	a := newItem("A", deploy.ContentFile)
	b := newItem("B", deploy.ContentFolder)
	u := newItem("U", deploy.ContentURL)
	for _, c := range []*deploy.ContentItem{a, b, u} {
		must(t, "CreateContentItem", s.CreateContentItem(ctx(t), c))
	}
	add := func(item string, v *deploy.ContentVersion) {
		t.Helper()
		_, err := s.AddContentVersion(ctx(t), item, v)
		must(t, "AddContentVersion", err)
	}
	add(a.ID, &deploy.ContentVersion{SHA256: hash('1')}) // A:1 -> 1
	add(a.ID, &deploy.ContentVersion{SHA256: hash('1')}) // A:2 -> 1
	add(a.ID, &deploy.ContentVersion{SHA256: hash('3')}) // A:3 -> 3
	add(b.ID, &deploy.ContentVersion{SHA256: hash('f'), Manifest: &deploy.Manifest{Files: []deploy.ManifestFile{
		{Path: "x/one.bin", Size: 1, Mode: 0o644, SHA256: hash('1')},
		{Path: "x/two.bin", Size: 2, Mode: 0o644, SHA256: hash('2')},
		{Path: "copy/two.bin", Size: 2, Mode: 0o644, SHA256: hash('2')},
	}}}) // B:1 -> 1, 2 (its own SHA256 is the manifest's, not a blob)
	add(u.ID, &deploy.ContentVersion{SHA256: hash('9'), ExternalURL: deploy.StrPtr("https://example.com/x")}) // expected hash only

	inUse := func(want map[byte]bool) {
		t.Helper()
		for c, w := range want {
			got, err := s.BlobInUse(ctx(t), hash(c))
			must(t, "BlobInUse", err)
			if got != w {
				t.Errorf("BlobInUse(%c…) = %v, want %v", c, got, w)
			}
		}
	}
	inUse(map[byte]bool{'1': true, '2': true, '3': true, 'f': false, '9': false, '0': false})

	steps := []struct {
		name   string
		del    func() ([]string, error)
		want   []string
		inUse  map[byte]bool
		remain int // versions of A left
	}{
		{"A:1 shares its blob with A:2 and B", func() ([]string, error) { return s.DeleteContentVersion(ctx(t), a.ID, 1) },
			[]string{}, map[byte]bool{'1': true}, 2},
		{"A:3 alone holds 3", func() ([]string, error) { return s.DeleteContentVersion(ctx(t), a.ID, 3) },
			[]string{hash('3')}, map[byte]bool{'3': false, '1': true}, 1},
		{"item B: 2 is only B's, 1 is still A:2's", func() ([]string, error) { return s.DeleteContentItem(ctx(t), b.ID) },
			[]string{hash('2')}, map[byte]bool{'2': false, '1': true}, 1},
		{"item A: last reference to 1", func() ([]string, error) { return s.DeleteContentItem(ctx(t), a.ID) },
			[]string{hash('1')}, map[byte]bool{'1': false}, 0},
		{"item U references no blob", func() ([]string, error) { return s.DeleteContentItem(ctx(t), u.ID) },
			[]string{}, map[byte]bool{'9': false}, 0},
	}
	for _, st := range steps {
		got, err := st.del()
		must(t, st.name, err)
		if d := cmp.Diff(st.want, got, cmpNilEmpty()); d != "" {
			t.Errorf("%s: orphans (-want +got):\n%s", st.name, d)
		}
		inUse(st.inUse)
		if st.remain > 0 {
			item, err := s.ContentItem(ctx(t), a.ID)
			must(t, "ContentItem", err)
			if len(item.Versions) != st.remain || item.VersionsCount != st.remain {
				t.Errorf("%s: A has %d versions (count %d), want %d", st.name, len(item.Versions), item.VersionsCount, st.remain)
			}
		}
	}
	if _, err := s.ContentItem(ctx(t), a.ID); deploy.ErrorKind(err) != deploy.KindNotFound {
		t.Errorf("deleted item still readable: %v", err)
	}
	items, err := s.ContentItems(ctx(t))
	must(t, "ContentItems", err)
	if len(items) != 0 {
		t.Errorf("ContentItems after deleting all = %d items", len(items))
	}
}

func testContentItemsList(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	for _, n := range []string{"charlie", "alpha", "bravo"} {
		c := newItem(n, deploy.ContentFile)
		must(t, "CreateContentItem", s.CreateContentItem(ctx(t), c))
		for i := 0; i < len(n)-4; i++ {
			_, err := s.AddContentVersion(ctx(t), c.ID, &deploy.ContentVersion{})
			must(t, "AddContentVersion", err)
		}
	}
	items, err := s.ContentItems(ctx(t))
	must(t, "ContentItems", err)
	type row struct {
		Name     string
		Versions []int
	}
	var got []row
	for _, c := range items {
		r := row{Name: c.Name}
		for _, v := range c.Versions {
			r.Versions = append(r.Versions, v.VersionNo)
		}
		got = append(got, r)
	}
	want := []row{{"alpha", []int{1}}, {"bravo", []int{1}}, {"charlie", []int{1, 2, 3}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ContentItems (-want +got):\n%s", d)
	}
}

// cmpNilEmpty treats nil and empty slices as equal.
func cmpNilEmpty() cmp.Option {
	return cmp.FilterValues(func(x, y []string) bool { return len(x) == 0 && len(y) == 0 },
		cmp.Comparer(func(x, y []string) bool { return true }))
}
