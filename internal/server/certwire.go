package server

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// clientCertTLS adds client-certificate checking to the API port's TLS
// configuration. Each connection gets its own copy whose VerifyConnection
// knows the peer's address, so certificates refused in the handshake
// (expired, unknown CA, revoked, wrong usage) are audited with their source
// and count in the throttle like any other failed authentication.
func (s *Server) clientCertTLS(base *tls.Config) *tls.Config {
	if s.certs == nil {
		return base
	}
	withCerts := s.certs.TLSConfig(base)
	return &tls.Config{
		MinVersion:   withCerts.MinVersion,
		Certificates: withCerts.Certificates,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c := withCerts.Clone()
			check := c.VerifyConnection
			src := ""
			if hello.Conn != nil {
				src, _, _ = net.SplitHostPort(hello.Conn.RemoteAddr().String())
			}
			c.VerifyConnection = func(cs tls.ConnectionState) error {
				err := check(cs)
				if err != nil && len(cs.PeerCertificates) > 0 {
					// A refused certificate is a failed login: it counts,
					// and past the source's backoff it is only counted.
					if ok, _ := s.throttle.Allow(src, ""); !ok {
						s.refusals.Note("auth.attempt", src)
						s.metrics.throttled.Inc()
						return err
					}
					s.throttle.Failure(src, "")
					s.record(context.Background(), &deploy.AuditEvent{
						Action: "auth.attempt", Outcome: auth.OutcomeFailure, Source: src,
						Actor:   cs.PeerCertificates[0].Subject.String(),
						Details: map[string]string{"method": auth.MethodCertificate, "reason": err.Error()},
					})
				}
				return err
			}
			return c, nil
		},
	}
}

// reloadCRLs re-reads the CRL files so a newly revoked certificate stops
// working within a minute, without a restart. A file that fails to load
// keeps the previous list (the verifier refuses to go backwards) and is
// logged loudly: a CRL that goes stale makes every certificate of its CA
// fail closed.
func (s *Server) reloadCRLs(ctx context.Context) {
	if s.certs == nil {
		return
	}
	every := s.cfg.CRLReload
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.certs.Reload(); err != nil {
				s.log.Error("reload CRLs", "err", err)
			}
		}
	}
}
