package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/backup"
	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// adminBackup streams a backup archive (internal/backup) of a consistent
// snapshot while the server runs: the database dump, the TLS material
// and, with ?blobs=true, every content blob the snapshot references. It
// is on the admin socket only: the archive holds every secret of the
// server (passcode and token hashes, the CA key).
//
// With blobs, the snapshot is taken and the blobs opened while holding
// s.gc shared, so no blob the snapshot references is removed before it
// is open (a removed file stays readable through its open descriptor).
func (s *Server) adminBackup(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	d, ok := s.Store().(deploy.Dumper)
	if !ok {
		return deploy.Errorf(deploy.KindInvalid, "this server's store cannot be backed up")
	}
	withBlobs, _ := strconv.ParseBool(r.URL.Query().Get("blobs"))
	tmp, err := os.CreateTemp(s.cfg.DataDir, ".backup-*.jsonl")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	sum := sha256.New()
	objs := map[string]content.Object{}
	var missing []string
	defer func() {
		for _, o := range objs {
			o.Close()
		}
	}()
	info, err := func() (deploy.DumpInfo, error) {
		if withBlobs {
			s.gc.RLock()
			defer s.gc.RUnlock()
		}
		info, err := d.Dump(ctx, io.MultiWriter(tmp, sum))
		if err != nil || !withBlobs {
			return info, err
		}
		for _, h := range info.Blobs {
			o, err := s.blobs.Open(ctx, h)
			if deploy.ErrorKind(err) == deploy.KindNotFound {
				// Already lost (see imprint content verify): the
				// backup says so rather than refusing to be taken.
				missing = append(missing, h)
				continue
			}
			if err != nil {
				return info, fmt.Errorf("open content blob %s: %w", h, err)
			}
			objs[h] = o
		}
		return info, nil
	}()
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	srcs := []backup.Source{{
		Member: backup.Member{Name: backup.DBName, Size: size, SHA256: hex.EncodeToString(sum.Sum(nil))},
		Open:   func() (io.ReadCloser, error) { return os.Open(tmp.Name()) },
	}}
	tlsSrcs, err := fileSources(filepath.Join(s.cfg.DataDir, "tls"), backup.TLSDir)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	srcs = append(srcs, tlsSrcs...)
	for _, h := range info.Blobs {
		o := objs[h]
		if o == nil {
			continue
		}
		srcs = append(srcs, backup.Source{
			Member: backup.Member{Name: backup.BlobsDir + h, Size: o.Size(), SHA256: h},
			Open: func() (io.ReadCloser, error) {
				if _, err := o.Seek(0, io.SeekStart); err != nil {
					return nil, err
				}
				return io.NopCloser(o), nil
			},
		})
	}
	m := &backup.Manifest{Server: backup.Version(), Created: s.now().UTC(), Schema: info.Schema,
		Tables: info.Tables, Blobs: info.Blobs, BlobsIncluded: withBlobs, MissingBlobs: missing}
	if m.Blobs == nil {
		m.Blobs = []string{}
	}
	w.Header().Set("Content-Type", "application/zstd")
	if err := backup.Write(w, m, srcs); err != nil {
		// The archive has begun: end the connection so the client sees a
		// broken stream, not an error message inside it.
		s.log.Error("backup failed", "err", err)
		panic(http.ErrAbortHandler)
	}
	s.record(ctx, &deploy.AuditEvent{Action: "sys.backup", Outcome: auth.OutcomeSuccess,
		Details: map[string]string{"blobs": strconv.Itoa(len(objs)), "schema": strconv.Itoa(info.Schema)}})
	return nil
}

// fileSources are the regular files directly in dir (hashed now), as
// members named prefix+name; a missing dir gives none.
func fileSources(dir, prefix string) ([]backup.Source, error) {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var srcs []backup.Source
	for _, e := range ents {
		if !e.Type().IsRegular() || e.Name()[0] == '.' {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		h := sha256.Sum256(b)
		srcs = append(srcs, backup.Source{
			Member: backup.Member{Name: prefix + e.Name(), Size: int64(len(b)), SHA256: hex.EncodeToString(h[:])},
			Open:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		})
	}
	return srcs, nil
}
