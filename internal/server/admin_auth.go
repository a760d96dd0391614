package server

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/auth/entra"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// afterChange revokes sessions of retired generations and audits.
func (s *Server) afterChange(r *http.Request, action string, ch auth.PasscodeChange) (wire.PasscodeChange, error) {
	ans := wire.PasscodeChange{Generation: ch.Generation, Code: ch.Code, GraceUntil: ch.GraceUntil}
	n, err := s.sessions.RevokeGenerations(r.Context(), ch.Retired)
	if err != nil {
		return ans, err
	}
	ans.SessionsRevoked = n
	details := map[string]string{"generation": strconv.Itoa(ch.Generation), "sessionsRevoked": strconv.Itoa(n)}
	if !ch.GraceUntil.IsZero() {
		details["graceUntil"] = ch.GraceUntil.UTC().Format(time.RFC3339)
	}
	s.record(r.Context(), &deploy.AuditEvent{Action: action, Outcome: auth.OutcomeSuccess, Actor: actor(r.Context()), Details: details})
	s.log.Info("passcode changed", "action", action, "generation", ch.Generation, "sessions_revoked", n)
	return ans, nil
}

func (s *Server) adminPasscodeSet(w http.ResponseWriter, r *http.Request) error {
	var req wire.PasscodeRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ch, err := s.passcodes.Set(r.Context(), req.Passcode)
	if err != nil {
		return err
	}
	ans, err := s.afterChange(r, "passcode.set", ch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

func (s *Server) adminPasscodeGenerate(w http.ResponseWriter, r *http.Request) error {
	ch, err := s.passcodes.Generate(r.Context())
	if err != nil {
		return err
	}
	ans, err := s.afterChange(r, "passcode.generate", ch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

func (s *Server) adminPasscodeRotate(w http.ResponseWriter, r *http.Request) error {
	var req wire.PasscodeRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	grace, err := time.ParseDuration(req.Grace)
	if err != nil || grace < 0 {
		return deploy.Errorf(deploy.KindInvalid, "grace: %q is not a duration such as 24h or 0", req.Grace)
	}
	ch, err := s.passcodes.Rotate(r.Context(), req.Passcode, grace)
	if err != nil {
		return err
	}
	ans, err := s.afterChange(r, "passcode.rotate", ch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

func (s *Server) adminPasscodeStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := s.passcodes.Status(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) adminPasscodeClear(w http.ResponseWriter, r *http.Request) error {
	ch, err := s.passcodes.Clear(r.Context())
	if err != nil {
		return err
	}
	ans, err := s.afterChange(r, "passcode.clear", ch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

func (s *Server) adminSessions(w http.ResponseWriter, r *http.Request) error {
	all, err := s.store.Sessions(r.Context())
	if err != nil {
		return err
	}
	now := s.now()
	live := []*deploy.Session{}
	for _, x := range all {
		if r.URL.Query().Get("all") == "1" || (x.RevokedAt == nil && x.ExpiresAt.After(now)) {
			live = append(live, x)
		}
	}
	writeJSON(w, http.StatusOK, live)
	return nil
}

func (s *Server) adminRevokeSession(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "session")
	if err != nil {
		return err
	}
	n, err := s.store.RevokeSessions(r.Context(), deploy.SessionFilter{ID: id}, s.now())
	if err != nil {
		return err
	}
	if n == 0 {
		return deploy.Errorf(deploy.KindNotFound, "no live session %s", id)
	}
	s.record(r.Context(), &deploy.AuditEvent{Action: "session.revoke", Outcome: auth.OutcomeSuccess, Actor: actor(r.Context()),
		Details: map[string]string{"session": id}})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// adminRevokeSessions ends every live session of one device (?device=ID)
// or every live session (?all=1): after a lost laptop, or when a passcode
// leaked.
func (s *Server) adminRevokeSessions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var f deploy.SessionFilter
	details := map[string]string{}
	switch dev := strings.TrimSpace(q.Get("device")); {
	case dev != "" && q.Get("all") == "":
		id, err := deploy.ParseDeviceID(dev)
		if err != nil {
			return err
		}
		f.DeviceID = id
		details["device"] = f.DeviceID
	case dev == "" && q.Get("all") == "1":
		details["scope"] = "all"
	default:
		return deploy.Errorf(deploy.KindInvalid, "name the sessions to revoke: ?device=ID or ?all=1 (one of them)")
	}
	n, err := s.store.RevokeSessions(r.Context(), f, s.now())
	if err != nil {
		return err
	}
	details["sessionsRevoked"] = strconv.Itoa(n)
	s.record(r.Context(), &deploy.AuditEvent{Action: "session.revoke", Outcome: auth.OutcomeSuccess, Actor: actor(r.Context()), Details: details})
	writeJSON(w, http.StatusOK, wire.SessionsRevoked{SessionsRevoked: n})
	return nil
}

func (s *Server) adminSecurity(w http.ResponseWriter, r *http.Request) error {
	sec, err := s.security(r.Context())
	if err != nil {
		return err
	}
	m, err := s.authMethods(r.Context(), "")
	if err != nil {
		return err
	}
	st, err := s.passcodes.Status(r.Context())
	if err != nil {
		return err
	}
	v := wire.Security{Anonymous: sec.Anonymous, AnonymousFrom: sec.AnonymousFrom, Entra: (*wire.EntraConfig)(sec.Entra),
		PasscodeAlongside: sec.PasscodeAlongside, SecureBootOff: sec.SecureBootOff,
		Certificate: s.certs != nil, Passcode: st.Set, Methods: m.Methods, BootImageMethods: m.BootImageMethods,
		SecureBoot: !sec.SecureBootOff, SecureBootReady: s.signedChainReady() == nil, CertSubject: s.cfg.CertSubjectPattern}
	if err := s.signedChainReady(); v.SecureBoot && err != nil {
		v.Missing = append(v.Missing, "Secure Boot mode is on but "+err.Error()+": UEFI machines get iPXE, which firmware with Secure Boot on refuses; run `imprint bootimage build`")
	}
	if len(m.Methods) == 0 {
		v.Missing = append(v.Missing, m.Hint)
	}
	if s.certs != nil && s.cfg.CertSubjectPattern == "" {
		v.Missing = append(v.Missing, "certificates have no subject rule: any certificate the client CA issued is accepted; restart with --cert-subject PATTERN (e.g. `pc-\\d+\\.corp\\.example`) to accept only device certificates")
	}
	if sec.Entra != nil && sec.Entra.RequiredRole == "" {
		v.Missing = append(v.Missing, "Entra ID has no required app role: every user of the tenant can deploy; set one with `imprint security set entra … --role NAME` and assign it to the technicians")
	}
	if st.Set && st.Age > 180*24*time.Hour {
		v.Missing = append(v.Missing, "the passcode is older than 180 days: rotate it with `imprint passcode rotate --grace 24h`")
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) adminSetAnonymous(w http.ResponseWriter, r *http.Request) error {
	return s.setSecuritySwitch(w, r, "security.anonymous", func(sec *Security, req wire.SecuritySwitch) error {
		for _, c := range req.From {
			if _, err := netip.ParsePrefix(c); err != nil {
				return deploy.Errorf(deploy.KindInvalid, "from: %q is not a network such as 10.20.0.0/16", c)
			}
		}
		sec.Anonymous, sec.AnonymousFrom = req.On, nil
		if req.On {
			sec.AnonymousFrom = req.From
			s.log.Warn("ANONYMOUS AUTHENTICATION TURNED ON: anyone who can reach this server can run any task sequence", "from", req.From)
		}
		return nil
	})
}

func (s *Server) adminSetPasscodeAlongside(w http.ResponseWriter, r *http.Request) error {
	return s.setSecuritySwitch(w, r, "security.passcode-alongside", func(sec *Security, req wire.SecuritySwitch) error {
		if len(req.From) > 0 {
			return deploy.Errorf(deploy.KindInvalid, "from: only anonymous can be limited to networks")
		}
		sec.PasscodeAlongside = req.On
		return nil
	})
}

func (s *Server) adminSetSecureBoot(w http.ResponseWriter, r *http.Request) error {
	return s.setSecuritySwitch(w, r, "security.secure-boot", func(sec *Security, req wire.SecuritySwitch) error {
		if len(req.From) > 0 {
			return deploy.Errorf(deploy.KindInvalid, "from: only anonymous can be limited to networks")
		}
		sec.SecureBootOff = !req.On
		return nil
	})
}

// setSecuritySwitch changes one on/off security setting with set, audits
// it as action and answers the security view.
func (s *Server) setSecuritySwitch(w http.ResponseWriter, r *http.Request, action string, set func(*Security, wire.SecuritySwitch) error) error {
	var req wire.SecuritySwitch
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := s.updateSecurity(r.Context(), func(sec *Security) error { return set(sec, req) }); err != nil {
		return err
	}
	details := map[string]string{"on": strconv.FormatBool(req.On)}
	if len(req.From) > 0 {
		details["from"] = strings.Join(req.From, ",")
	}
	s.record(r.Context(), &deploy.AuditEvent{Action: action, Outcome: auth.OutcomeSuccess, Actor: actor(r.Context()), Details: details})
	return s.adminSecurity(w, r)
}

func (s *Server) adminSetEntra(w http.ResponseWriter, r *http.Request) error {
	var req wire.EntraConfig
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	cfg := entra.Config(req)
	if err := cfg.Validate(); err != nil {
		return deploy.Wrap(deploy.KindInvalid, err, "entra: "+err.Error())
	}
	if err := s.updateSecurity(r.Context(), func(sec *Security) error { sec.Entra = &cfg; return nil }); err != nil {
		return err
	}
	s.record(r.Context(), &deploy.AuditEvent{Action: "security.entra", Outcome: auth.OutcomeSuccess, Actor: actor(r.Context()),
		Details: map[string]string{"tenant": cfg.TenantID, "client": cfg.ClientID}})
	return s.adminSecurity(w, r)
}

func (s *Server) adminClearEntra(w http.ResponseWriter, r *http.Request) error {
	if err := s.updateSecurity(r.Context(), func(sec *Security) error { sec.Entra = nil; return nil }); err != nil {
		return err
	}
	s.record(r.Context(), &deploy.AuditEvent{Action: "security.entra.off", Outcome: auth.OutcomeSuccess, Actor: actor(r.Context())})
	return s.adminSecurity(w, r)
}

func (s *Server) adminAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	after, _ := strconv.ParseInt(q.Get("after"), 10, 64)
	limit, _ := strconv.Atoi(q.Get("limit"))
	ev, err := s.store.AuditEvents(r.Context(), after, max(limit, 0))
	if err != nil {
		return err
	}
	if ev == nil {
		ev = []*deploy.AuditEvent{}
	}
	writeJSON(w, http.StatusOK, ev)
	return nil
}

func (s *Server) adminAuditVerify(w http.ResponseWriter, r *http.Request) error {
	n, err := s.auditor.VerifyAll(r.Context())
	if err != nil {
		return deploy.Wrap(deploy.KindConflict, err, "audit log verification failed: "+err.Error())
	}
	writeJSON(w, http.StatusOK, wire.AuditVerify{OK: true, Verified: n})
	return nil
}
