package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// Backup streams a backup archive of the server (internal/backup) to w:
// one consistent snapshot of its database and TLS material, and with
// blobs every content blob the snapshot references. Only the admin socket
// offers it. The caller verifies the archive (backup.Read): a server
// that fails midway ends the stream early.
func (a *Admin) Backup(ctx context.Context, blobs bool, w io.Writer) (int64, error) {
	resp, err := a.send(ctx, request{method: http.MethodGet, path: "/admin/v1/backup",
		query: url.Values{"blobs": {strconv.FormatBool(blobs)}}})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("backup: the server's stream broke after %d bytes: %w", n, err)
	}
	return n, nil
}
