package storetest

import (
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// testContentImportAndFill: an imported item keeps its ids, numbers and
// dates; its versions await content until filled, and filling twice or
// importing the same ids again is a conflict.
func testContentImportAndFill(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	item := &deploy.ContentItem{ID: "d819ff51-72a1-4e3c-bdf3-fcb69cf1bbab", Name: "Scripts", Type: deploy.ContentFile,
		Purpose: deploy.PurposeOther, VersionsCount: 2, CreatedDate: 1753386736, LastModifiedDate: 1753386737,
		Versions: []deploy.ContentVersion{
			{ID: "e754f30d-cf06-4b19-b487-e704bd5edb0b", VersionNo: 1, Status: deploy.StatusActive, ContentSize: 165472, AwaitingContent: true,
				CreatedDate: 1753386736, LastModifiedDate: 1764650069},
			{ID: "e754f30d-cf06-4b19-b487-e704bd5edb0c", VersionNo: 3, Status: deploy.StatusInDevelopment, AwaitingContent: true, SHA256: hash('c')},
		}}
	must(t, "ImportContentItem", s.ImportContentItem(ctx(t), item))
	got, err := s.ContentItem(ctx(t), item.ID)
	must(t, "ContentItem", err)
	if len(got.Versions) != 2 || got.Versions[1].VersionNo != 3 || got.Versions[1].ID != item.Versions[1].ID ||
		!got.Versions[0].AwaitingContent || got.LastModifiedDate != 1753386737 || got.VersionsCount != 2 {
		t.Fatalf("imported item = %+v", got)
	}
	if used, err := s.BlobInUse(ctx(t), hash('c')); err != nil || used {
		t.Errorf("expected hash of an awaiting version counts as a blob in use: %v %v", used, err)
	}
	if err := s.ImportContentItem(ctx(t), item); deploy.ErrorKind(err) != deploy.KindConflict {
		t.Errorf("second import: %v, want a conflict", err)
	}
	bare := *item
	bare.ID = "d819ff51-72a1-4e3c-bdf3-fcb69cf1bbac"
	bare.Versions = []deploy.ContentVersion{{VersionNo: 1}}
	if err := s.ImportContentItem(ctx(t), &bare); deploy.ErrorKind(err) != deploy.KindInvalid {
		t.Errorf("File version neither filled nor awaiting: %v, want invalid", err)
	}
	v, err := s.FillContentVersion(ctx(t), item.ID, 1, hash('a'), nil, 10)
	must(t, "FillContentVersion", err)
	if v.AwaitingContent || v.SHA256 != hash('a') || v.ContentSize != 10 || v.ID != item.Versions[0].ID {
		t.Errorf("filled version = %+v", v)
	}
	if used, err := s.BlobInUse(ctx(t), hash('a')); err != nil || !used {
		t.Errorf("filled blob in use = %v, %v", used, err)
	}
	if _, err := s.FillContentVersion(ctx(t), item.ID, 1, hash('b'), nil, 10); deploy.ErrorKind(err) != deploy.KindConflict {
		t.Errorf("second fill: %v, want a conflict", err)
	}
}
