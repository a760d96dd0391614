package accesstoken

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"
)

// maxJWKSBytes bounds the key document we are willing to read.
const maxJWKSBytes = 1 << 20

// fetchTimeout bounds one JWKS fetch so a slow IdP cannot stall token checks.
const fetchTimeout = 10 * time.Second

// emptyRetry is the refetch interval while no key is cached at all.
const emptyRetry = 30 * time.Second

// errUnknownKid is returned when no cached key matches and a refetch is not
// allowed yet (or did not produce the key).
var errUnknownKid = errors.New("no signing key with this kid")

// keySet caches the tenant's RSA signing keys by kid. It fetches lazily, and
// on an unknown kid refetches at most once per minRefetch; concurrent callers
// share one in-flight fetch. When a fetch fails the previous keys stay in use.
type keySet struct {
	url        string
	client     *http.Client
	minRefetch time.Duration
	now        func() time.Time

	mu          sync.Mutex
	keys        map[string]*rsa.PublicKey
	attempted   bool      // a fetch has been tried
	lastAttempt time.Time // when the last fetch started
	inflight    chan struct{}
	lastErr     error
}

// key returns the public key for kid, refetching the JWKS if allowed.
func (s *keySet) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	s.mu.Lock()
	if k, ok := s.keys[kid]; ok {
		s.mu.Unlock()
		return k, nil
	}
	if ch := s.inflight; ch != nil {
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return s.lookup(kid)
	}
	wait := s.minRefetch
	if len(s.keys) == 0 && wait > emptyRetry {
		// Nothing cached (the first fetch failed): retry sooner so a
		// transient outage at startup does not disable Entra ID for long.
		wait = emptyRetry
	}
	if s.attempted && s.now().Sub(s.lastAttempt) < wait {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w (JWKS refetch suppressed for %v after the last fetch)", errUnknownKid, wait)
	}
	ch := make(chan struct{})
	s.inflight, s.attempted, s.lastAttempt = ch, true, s.now()
	s.mu.Unlock()

	keys, err := s.fetch(ctx)

	s.mu.Lock()
	if err == nil {
		s.keys = keys
	}
	s.lastErr = err
	s.inflight = nil
	close(ch)
	s.mu.Unlock()
	if err != nil {
		if k, lerr := s.lookup(kid); lerr == nil {
			return k, nil
		}
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	return s.lookup(kid)
}

func (s *keySet) lookup(kid string) (*rsa.PublicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	if s.lastErr != nil {
		return nil, fmt.Errorf("%w (last JWKS fetch failed: %v)", errUnknownKid, s.lastErr)
	}
	return nil, errUnknownKid
}

type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func (s *keySet) fetch(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %s", s.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read JWKS: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS larger than %d bytes", maxJWKSBytes)
	}
	return parseJWKS(body)
}

// parseJWKS keeps the RSA signing keys of a JWKS document. Other key types
// are skipped; a document with no usable key is an error.
func parseJWKS(body []byte) (map[string]*rsa.PublicKey, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	keys := make(map[string]*rsa.PublicKey, len(doc.Keys))
	for i, k := range doc.Keys {
		if k.Kty != "RSA" || (k.Use != "" && k.Use != "sig") || k.Kid == "" {
			continue
		}
		pub, err := rsaKey(k)
		if err != nil {
			return nil, fmt.Errorf("JWKS key %d (kid %q): %w", i, k.Kid, err)
		}
		keys[k.Kid] = pub
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no RSA signing keys")
	}
	return keys, nil
}

func rsaKey(k jwk) (*rsa.PublicKey, error) {
	nb, err := base64.RawURLEncoding.DecodeString(k.N)
	if err != nil {
		return nil, fmt.Errorf("modulus: %w", err)
	}
	eb, err := base64.RawURLEncoding.DecodeString(k.E)
	if err != nil {
		return nil, fmt.Errorf("exponent: %w", err)
	}
	n := new(big.Int).SetBytes(nb)
	if n.BitLen() < 2048 {
		return nil, fmt.Errorf("modulus of %d bits is too small (need 2048)", n.BitLen())
	}
	if len(eb) == 0 || len(eb) > 4 {
		return nil, fmt.Errorf("exponent of %d bytes is invalid", len(eb))
	}
	e := new(big.Int).SetBytes(eb)
	if e.Int64() < 3 {
		return nil, errors.New("exponent is too small")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}
