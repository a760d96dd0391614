package server

import (
	"io"
	"log/slog"
	"testing"
)

// TestFitSharesTheOpenFileLimitBetweenPorts: the open-file limit is the
// process's, so both network ports together get (nofile − 256) / 2
// connections, and either port alone may use all of them.
func TestFitSharesTheOpenFileLimitBetweenPorts(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name            string
		nofile          uint64
		maxConns        int
		wantMax, wantPA int
		wantTotal       int
	}{
		{"unknown limit: no cap", 0, 4096, 4096, 64, 0},
		{"container's 20,000: 5,000 machines fit on the API port", 20000, 20000, 9872, 64, 9872},
		{"systemd's 65,536 keeps the default", 65536, 4096, 4096, 64, 32640},
		{"a tenth of the descriptors", 1500, 4096, 622, 64, 622},
		{"tiny limit: the floor", 300, 4096, 32, 32, 32},
		{"cap below the budget is kept", 20000, 100, 100, 64, 9872},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := DefaultLimits()
			l.MaxConns = tc.maxConns
			got, total := l.fit(tc.nofile, log)
			if got.MaxConns != tc.wantMax || got.MaxConnsPerAddr != tc.wantPA || total != tc.wantTotal {
				t.Fatalf("fit(%d) with max-conns %d: max-conns %d, per address %d, both ports %d; want %d, %d, %d",
					tc.nofile, tc.maxConns, got.MaxConns, got.MaxConnsPerAddr, total, tc.wantMax, tc.wantPA, tc.wantTotal)
			}
			// Both ports full, each connection with a file open, leave
			// the reserved descriptors.
			if tc.nofile > fdsReserved+2*minConns && uint64(2*total+fdsReserved) > tc.nofile {
				t.Fatalf("%d connections with a file each overrun %d descriptors", total, tc.nofile)
			}
		})
	}
}
