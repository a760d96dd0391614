package client_test

import (
	"context"
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// TestCreateContentKeepsVersions: the admin API never drops versions it is
// given; without their bytes they await content.
func TestCreateContentKeepsVersions(t *testing.T) {
	c := startServer(t)
	ctx := context.Background()
	item, err := c.CreateContentItem(ctx, deploy.ContentItem{Name: "Tools", Type: deploy.ContentFile, Purpose: deploy.PurposeOther,
		Versions: []deploy.ContentVersion{
			{VersionNo: 1, Description: deploy.StrPtr("one")},
			{VersionNo: 4, Description: deploy.StrPtr("four"), Status: deploy.StatusInDevelopment},
		}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ContentItem(ctx, item.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Versions) != 2 || got.Versions[1].VersionNo != 4 || deploy.Str(got.Versions[1].Description) != "four" ||
		!got.Versions[0].AwaitingContent || !got.Versions[1].AwaitingContent {
		t.Errorf("stored versions = %+v, want both, awaiting content", got.Versions)
	}
}
