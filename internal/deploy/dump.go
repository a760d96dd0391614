package deploy

import (
	"context"
	"io"
)

// Dumper is a store that can write a consistent snapshot of itself (the
// SQL stores' Dump): what `imprint backup` archives.
type Dumper interface {
	Dump(ctx context.Context, w io.Writer) (DumpInfo, error)
}

// DumpInfo is what a Dump read: the schema version, each table's sums
// (over the same snapshot) and the content blobs the snapshot references.
type DumpInfo struct {
	Schema int
	Tables []TableSum
	// Blobs are the distinct SHA-256 hashes of the content, sorted.
	Blobs []string
}

// TableSum is a table's row count and the SHA-256 of its canonical export.
type TableSum struct {
	Table string
	Rows  int64
	SHA   string
}
