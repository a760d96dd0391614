//go:build linux

package postgres_test

import (
	"testing"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/store/postgres"
	"github.com/imprint-osd/imprint/internal/store/postgres/pgtest"
	"github.com/imprint-osd/imprint/internal/store/storetest"
)

// openDSN opens the store on dsn and closes it at cleanup.
func openDSN(t *testing.T, dsn string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	srv := pgtest.Start(t)
	storetest.Run(t, func(t *testing.T) deploy.Store { return openDSN(t, srv.NewDatabase(t)) })
}

// TestShared opens two stores on one database, as two replicas would.
func TestShared(t *testing.T) {
	srv := pgtest.Start(t)
	storetest.RunShared(t, func(t *testing.T) (deploy.Store, deploy.Store) {
		dsn := srv.NewDatabase(t)
		return openDSN(t, dsn), openDSN(t, dsn)
	})
}
