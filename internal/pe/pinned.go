package pe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// PinnedTimeClient returns an HTTP client for one purpose: fetching the
// server's clock (GET /v1/time) while the machine's own clock may be wrong.
//
// It verifies the server itself instead of using the system roots: some
// certificate of the chain the server presents must have the SHA-256
// fingerprint caSHA256 (hex, colons allowed), the leaf must chain up to
// that certificate, and the leaf must be valid for the host name of the
// URL. Only the validity dates are not compared with the machine's clock:
// the chain is checked at a moment when all its certificates are valid,
// and a chain whose validity periods do not overlap is refused.
//
// Why this is safe: the pin, not the date, is what authenticates the
// server. A boot image with a dead or unset RTC would otherwise refuse
// every certificate, and it has no other trustworthy clock. An attacker
// could only replay a certificate issued by the pinned CA that has since
// expired (its key would have to be compromised too), and the answer is
// used for one thing only: setting the clock. Every later request goes
// through the normal client, which checks dates against that clock.
//
// A malformed fingerprint makes every request fail with an error that says
// so.
func PinnedTimeClient(caSHA256 string) *http.Client {
	fp, fpErr := parseFingerprint(caSHA256)
	want, _ := hex.DecodeString(fp)
	dialer := &net.Dialer{Timeout: 15 * time.Second}
	// The TLS connection is made here rather than by the transport so the
	// check knows the host dialled: ConnectionState.ServerName is empty
	// for an IP address, which would silently skip the name check.
	dialTLS := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if fpErr != nil {
			return nil, fpErr
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		raw, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cfg := &tls.Config{
			MinVersion: tls.VersionTLS12,
			ServerName: host,
			// Verification is done by VerifyConnection below.
			InsecureSkipVerify: true, //nolint:gosec // replaced by the pin check
			VerifyConnection: func(cs tls.ConnectionState) error {
				return verifyPinnedAnyTime(cs, want, host)
			},
		}
		conn := tls.Client(raw, cfg)
		hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := conn.HandshakeContext(hctx); err != nil {
			raw.Close()
			return nil, err
		}
		return conn, nil
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialTLSContext:    dialTLS,
			DisableKeepAlives: true,
		},
	}
}

// verifyPinnedAnyTime checks the chain against the pinned certificate
// and the host name, at a time when every certificate involved is valid.
func verifyPinnedAnyTime(cs tls.ConnectionState, want []byte, host string) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return errors.New("server presented no certificate")
	}
	var root *x509.Certificate
	for _, c := range certs {
		sum := sha256.Sum256(c.Raw)
		if bytes.Equal(sum[:], want) {
			root = c
			break
		}
	}
	if root == nil {
		return errors.New("no certificate of the server's chain has the pinned CA fingerprint")
	}
	leaf := certs[0]
	at, err := commonValidTime(certs)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if leaf.Equal(root) {
		// A self-signed server certificate pinned directly: only the
		// name is left to check.
		if err := leaf.VerifyHostname(host); err != nil {
			return fmt.Errorf("pinned server certificate: %w", err)
		}
		return nil
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host, CurrentTime: at}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("server certificate does not verify against the pinned CA: %w", err)
	}
	return nil
}

// commonValidTime is the latest NotBefore of certs, provided it is not
// after the earliest NotAfter.
func commonValidTime(certs []*x509.Certificate) (time.Time, error) {
	from, until := certs[0].NotBefore, certs[0].NotAfter
	for _, c := range certs[1:] {
		if c.NotBefore.After(from) {
			from = c.NotBefore
		}
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	if from.After(until) {
		return time.Time{}, errors.New("the server's certificates were never valid at the same time")
	}
	return from, nil
}

// FetchServerTime asks serverURL for its clock (GET /v1/time, answer
// {"unix": SECONDS}) with hc, normally a PinnedTimeClient.
func FetchServerTime(ctx context.Context, hc *http.Client, serverURL string) (time.Time, error) {
	u := strings.TrimRight(serverURL, "/") + "/v1/time"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return time.Time{}, fmt.Errorf("server time: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return time.Time{}, fmt.Errorf("server time: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return time.Time{}, fmt.Errorf("server time: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return time.Time{}, fmt.Errorf("server time: GET %s: %s", u, resp.Status)
	}
	var out struct {
		Unix *int64 `json:"unix"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Unix == nil {
		return time.Time{}, fmt.Errorf("server time: answer %q has no \"unix\" seconds", body)
	}
	return time.Unix(*out.Unix, 0), nil
}
