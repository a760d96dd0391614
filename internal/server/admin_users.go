package server

import (
	"net/http"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// Console accounts are managed on the server itself (the admin socket),
// like admin tokens: whoever holds a remote credential cannot mint another.

func (s *Server) adminListUsers(w http.ResponseWriter, r *http.Request) error {
	us, err := s.users.List(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, us)
	return nil
}

func (s *Server) adminAddUser(w http.ResponseWriter, r *http.Request) error {
	var req wire.UserRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	u, err := s.users.Add(r.Context(), req.Name, req.Role, req.Password)
	if err != nil {
		return err
	}
	s.record(r.Context(), &deploy.AuditEvent{Action: "user.add", Outcome: auth.OutcomeSuccess, Actor: actor(r.Context()),
		Details: map[string]string{"user": u.Name, "role": string(u.Role)}})
	writeJSON(w, http.StatusCreated, u)
	return nil
}

func (s *Server) adminSetUserPassword(w http.ResponseWriter, r *http.Request) error {
	var req wire.PasswordRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	u, err := s.users.SetPassword(r.Context(), r.PathValue("name"), req.Password)
	if err != nil {
		return err
	}
	s.consoleLogout(u.Name)
	s.record(r.Context(), &deploy.AuditEvent{Action: "user.passwd", Outcome: auth.OutcomeSuccess, Actor: actor(r.Context()),
		Details: map[string]string{"user": u.Name}})
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (s *Server) adminRemoveUser(w http.ResponseWriter, r *http.Request) error {
	name := auth.NormalizeUserName(r.PathValue("name"))
	if err := s.users.Remove(r.Context(), name); err != nil {
		return err
	}
	s.consoleLogout(name)
	s.record(r.Context(), &deploy.AuditEvent{Action: "user.remove", Outcome: auth.OutcomeSuccess, Actor: actor(r.Context()),
		Details: map[string]string{"user": name}})
	w.WriteHeader(http.StatusNoContent)
	return nil
}
