package entra_test

import (
	"strings"
	"testing"
	"time"

	"github.com/imprint-osd/imprint/internal/auth/entra"
	"github.com/imprint-osd/imprint/internal/auth/entra/entratest"
)

const (
	tenant      = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	otherTenant = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
	clientID    = "0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5"
	role        = "Imprint.Deploy"
)

func config(idp *entratest.Issuer) entra.Config {
	return entra.Config{TenantID: tenant, ClientID: clientID, RequiredRole: role, Authority: idp.Authority()}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  entra.Config
		want []string // substrings of the error; nil = valid
	}{
		{"valid", entra.Config{TenantID: tenant, ClientID: clientID}, nil},
		{"empty", entra.Config{}, []string{"TenantID: required", "ClientID: required"}},
		{"domain tenant", entra.Config{TenantID: "contoso.onmicrosoft.com", ClientID: clientID}, []string{"TenantID", "not a GUID"}},
		{"common", entra.Config{TenantID: "common", ClientID: clientID}, []string{"TenantID", "not a GUID"}},
		{"bad client id", entra.Config{TenantID: tenant, ClientID: "a/b"}, []string{"ClientID"}},
		{"bad authority", entra.Config{TenantID: tenant, ClientID: clientID, Authority: "ftp://x"}, []string{"Authority"}},
		{"negative refetch", entra.Config{TenantID: tenant, ClientID: clientID, MinRefetch: -time.Second}, []string{"MinRefetch"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted an invalid config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
