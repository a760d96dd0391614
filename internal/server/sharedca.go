package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/tlsca"
)

// caSetting is the setting holding the CA replicas share (tlsca.CA as
// JSON): certificate and private key.
const caSetting = "tls.ca"

// shared reports whether the store is one several server processes may
// share (PostgreSQL): only such a store implements deploy.RunWatcher.
func (s *Server) shared() bool {
	_, ok := s.Store().(deploy.RunWatcher)
	return ok
}

// openTLS loads DATA/tls or creates it. On a shared store the CA is the
// one in the database, so that every replica presents a certificate from
// the CA the machines pin (each replica still issues its own server
// certificate for its --cert-host names): the first replica to start
// stores its CA there (the one already in DATA/tls, as after `imprint
// migrate`, or a new one) and the others install it into their DATA/tls.
// A replica whose DATA/tls holds another CA refuses to start: machines
// that pinned either would be refused by the other.
func (s *Server) openTLS(ctx context.Context) error {
	dir := filepath.Join(s.cfg.DataDir, "tls")
	if s.shared() {
		if err := s.shareCA(ctx, dir); err != nil {
			return err
		}
	}
	var err error
	s.tls, err = tlsca.LoadOrCreate(dir, s.certHosts(), s.now())
	return err
}

func (s *Server) shareCA(ctx context.Context, dir string) error {
	local, err := tlsca.ReadCA(dir)
	have := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	offer := local
	if !have {
		if offer, err = tlsca.NewCA(s.now()); err != nil {
			return err
		}
	}
	mine, err := json.Marshal(offer)
	if err != nil {
		return fmt.Errorf("tls: shared CA: %w", err)
	}
	var stored []byte
	err = s.store.UpdateSetting(ctx, caSetting, func(old []byte) ([]byte, error) {
		if old != nil {
			stored = old
			return old, nil
		}
		stored = mine
		return mine, nil
	})
	if err != nil {
		return fmt.Errorf("tls: shared CA: %w", err)
	}
	var ca tlsca.CA
	if err := json.Unmarshal(stored, &ca); err != nil {
		return fmt.Errorf("tls: shared CA in the database: %w", err)
	}
	if have {
		if !bytes.Equal(ca.Cert, local.Cert) {
			return fmt.Errorf("tls: %s holds another CA than the one the replicas on this database share: "+
				"machines pinned to either would be refused by the other; move %s away to take the shared one", dir, dir)
		}
		return nil
	}
	if !bytes.Equal(stored, mine) {
		s.log.Info("took the CA the replicas on this database share", "dir", dir)
	}
	return tlsca.WriteCA(dir, ca)
}
