package entratest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// GraphAudience is Microsoft Graph's resource id, for confused-deputy tests.
const GraphAudience = "00000003-0000-0000-c000-000000000000"

// Issuer is a fake Entra tenant served over plain HTTP on 127.0.0.1.
type Issuer struct {
	Tenant string
	server *httptest.Server

	mu          sync.Mutex
	key         *rsa.PrivateKey
	kid         string
	stray       *rsa.PrivateKey // never published; for unknown-kid tokens
	published   []signingKey    // keys in the JWKS, current first
	jwksFetches int
	jwksDown    bool
	nextID      int
	devices     map[string]*device // by device_code
	byUser      map[string]string  // user_code -> device_code
	interval    int
	expiresIn   int
}

type signingKey struct {
	kid string
	pub *rsa.PublicKey
}

type device struct {
	clientID string
	userCode string
	state    string // pending, approved, denied, expired
	token    string
	slowDown int // answer slow_down this many times before anything else
	polls    int
}

// NewIssuer starts a fake issuer for tenant; it stops when t ends.
func NewIssuer(t testing.TB, tenant string) *Issuer {
	t.Helper()
	i := &Issuer{
		Tenant:    tenant,
		stray:     mustKey(),
		devices:   map[string]*device{},
		byUser:    map[string]string{},
		interval:  5,
		expiresIn: 900,
	}
	i.RotateKey(false)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", i.serveJWKS)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/devicecode", i.serveDeviceCode)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", i.serveToken)
	i.server = httptest.NewServer(mux)
	t.Cleanup(i.server.Close)
	return i
}

// Authority is the base URL to put in entra.Config.Authority.
func (i *Issuer) Authority() string { return i.server.URL }

// Client is an HTTP client for the fake.
func (i *Issuer) Client() *http.Client { return i.server.Client() }

// IssuerURL is the tenant's v2.0 issuer, the value of "iss".
func (i *Issuer) IssuerURL() string { return i.server.URL + "/" + i.Tenant + "/v2.0" }

// JWKSFetches counts JWKS requests served (including failed ones).
func (i *Issuer) JWKSFetches() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.jwksFetches
}

// SetJWKSDown makes the JWKS endpoint answer 500 while down is true.
func (i *Issuer) SetJWKSDown(down bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.jwksDown = down
}

// RotateKey makes a fresh key current; the old one stays published when
// keepOld is true, as during a normal Entra rollover.
func (i *Issuer) RotateKey(keepOld bool) {
	k := mustKey()
	i.mu.Lock()
	defer i.mu.Unlock()
	i.key, i.kid = k, randomID("kid")
	cur := signingKey{kid: i.kid, pub: &k.PublicKey}
	if keepOld {
		i.published = append([]signingKey{cur}, i.published...)
	} else {
		i.published = []signingKey{cur}
	}
}

// Claims returns valid claims for audience with the given app roles, issued
// at now and expiring an hour later.
func (i *Issuer) Claims(audience string, now time.Time, roles ...string) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss":                i.IssuerURL(),
		"aud":                audience,
		"tid":                i.Tenant,
		"sub":                "sub-alice",
		"oid":                "11111111-2222-3333-4444-555555555555",
		"name":               "Alice Admin",
		"upn":                "alice@contoso.example",
		"preferred_username": "alice@contoso.example",
		"ver":                "2.0",
		"iat":                now.Unix(),
		"nbf":                now.Unix(),
		"exp":                now.Add(time.Hour).Unix(),
	}
	if len(roles) > 0 {
		c["roles"] = roles
	}
	return c
}

// Mint signs claims with RS256 and the current key.
func (i *Issuer) Mint(claims jwt.MapClaims) string {
	i.mu.Lock()
	k, kid := i.key, i.kid
	i.mu.Unlock()
	return sign(jwt.SigningMethodRS256, claims, kid, k)
}

// MintUnknownKid signs claims with a key that is not in the JWKS, under a
// fresh random kid each time.
func (i *Issuer) MintUnknownKid(claims jwt.MapClaims) string {
	return sign(jwt.SigningMethodRS256, claims, randomID("kid"), i.stray)
}

// MintNoKid signs claims with the current key but omits the kid header.
func (i *Issuer) MintNoKid(claims jwt.MapClaims) string {
	i.mu.Lock()
	k := i.key
	i.mu.Unlock()
	return sign(jwt.SigningMethodRS256, claims, "", k)
}

// MintAlgNone returns an unsigned token (alg "none") naming the current kid.
func (i *Issuer) MintAlgNone(claims jwt.MapClaims) string {
	i.mu.Lock()
	kid := i.kid
	i.mu.Unlock()
	return sign(jwt.SigningMethodNone, claims, kid, jwt.UnsafeAllowNoneSignatureType)
}

// MintHS256WithPublicKey is the algorithm-confusion attack: HS256 keyed
// with the DER bytes of the issuer's public key, naming the current kid.
func (i *Issuer) MintHS256WithPublicKey(claims jwt.MapClaims) string {
	i.mu.Lock()
	k, kid := i.key, i.kid
	i.mu.Unlock()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		panic(err)
	}
	return sign(jwt.SigningMethodHS256, claims, kid, der)
}

// MintTampered signs claims and then swaps in other claims, so the
// signature no longer matches.
func (i *Issuer) MintTampered(claims, forged jwt.MapClaims) string {
	good := i.Mint(claims)
	other := i.Mint(forged)
	return headerOf(good) + "." + payloadOf(other) + "." + sigOf(good)
}

func sign(m jwt.SigningMethod, claims jwt.MapClaims, kid string, key any) string {
	t := jwt.NewWithClaims(m, claims)
	if kid != "" {
		t.Header["kid"] = kid
	}
	s, err := t.SignedString(key)
	if err != nil {
		panic(fmt.Sprintf("entratest: sign: %v", err))
	}
	return s
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("tenant") != i.Tenant {
		http.NotFound(w, r)
		return
	}
	i.mu.Lock()
	i.jwksFetches++
	down := i.jwksDown
	keys := make([]map[string]string, 0, len(i.published))
	for _, k := range i.published {
		keys = append(keys, map[string]string{
			"kty": "RSA", "use": "sig", "kid": k.kid,
			"n": base64.RawURLEncoding.EncodeToString(k.pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.pub.E)).Bytes()),
		})
	}
	i.mu.Unlock()
	if down {
		http.Error(w, "jwks unavailable", http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

func mustKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func randomID(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%x", prefix, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
