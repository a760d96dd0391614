package server

import (
	"net/http"

	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// apiRoutes is the machine-facing HTTPS API (agents, boot images).
func (s *Server) apiRoutes() http.Handler {
	mux := s.newRouteMux("api")
	mux.Handle("GET /healthz", s.adapt(s.handleHealth))
	mux.Handle("GET /v1/time", s.adapt(s.handleTime))
	mux.Handle("GET /v1/openapi.json", s.adapt(s.handleOpenAPI))
	mux.Handle("GET /v1/auth/methods", s.adapt(s.handleAuthMethods))
	mux.Handle("POST /v1/auth/token", s.adapt(s.handleToken))
	bearer := func(h handlerFunc) http.Handler { return s.adapt(s.requireSession(vouchSession(h))) }
	mux.Handle("GET /v1/tasksequences", bearer(s.machineListTS))
	mux.Handle("GET /v1/tasksequences/{id}/versions/{no}", bearer(s.machineGetTS))
	mux.Handle("GET /v1/stepdefs/{id}", bearer(s.machineGetStepDef))
	mux.Handle("GET /v1/agent/windows-amd64", bearer(s.machineWindowsAgent))
	mux.Handle("GET /v1/driverpacks", bearer(s.machineDriverPacks))
	mux.Handle("GET /v1/content/{id}/{no}", bearer(s.machineContentInfo))
	mux.Handle("GET /v1/content/{id}/{no}/data", bearer(s.machineContentData))
	mux.Handle("GET /v1/content/{id}/{no}/files/{path...}", bearer(s.machineContentFile))
	mux.Handle("GET /v1/content/{id}/{no}/multicast", bearer(s.machineMulticast))
	mux.Handle("GET /v1/content/{id}/{no}/chunks", bearer(s.machineChunks))
	mux.Handle("POST /v1/content/{id}/{no}/peers", bearer(s.machineJoinPeers))
	mux.Handle("DELETE /v1/content/{id}/{no}/peers", bearer(s.machineLeavePeers))
	mux.Handle("POST /v1/content/{id}/versions", bearer(s.machineCapture))
	mux.Handle("POST /v1/runs", bearer(s.machineCreateRun))
	mux.Handle("POST /v1/runs/{id}/events", bearer(s.machineRunEvents))
	mux.Handle("POST /v1/runs/{id}/logs", bearer(s.machineRunLogs))
	mux.Handle("POST /v1/runs/{id}/server-script", bearer(s.machineServerScript))
	mux.Handle("/admin/v1/", s.requireAdminToken(vouch(s.auditChanges(s.adminMux(false)))))
	s.consoleRoutes(mux.ServeMux) // the web console: /, /login, /runs/…, /static/… (HTML, not in the OpenAPI document)
	return s.recoverer(mux)
}

// bootRoutes serve boot files over plain HTTP: nothing secret, only the
// server URL and the CA fingerprint to pin.
func (s *Server) bootRoutes() (http.Handler, error) {
	bh, err := s.bootHandler()
	if err != nil {
		return nil, err
	}
	s.bootH = bh
	mux := s.newRouteMux("boot")
	mux.Handle("/", s.metrics.bootMetered(bh))
	mux.Handle("GET /healthz", s.adapt(s.handleHealth))
	mux.Handle("GET /ca.crt", s.adapt(s.handleCACert))
	return s.recoverer(mux), nil
}

// adminRoutes is the admin API on the Unix socket.
func (s *Server) adminRoutes() http.Handler {
	mux := s.newRouteMux("socket")
	mux.Handle("/admin/v1/", s.auditChanges(s.adminMux(true)))
	mux.Handle("GET /healthz", s.adapt(s.handleHealth))
	return s.recoverer(mux)
}

// adminMux holds the admin API. The socket (local) also manages admin
// tokens; over HTTPS (behind requireAdminToken) those routes do not exist.
func (s *Server) adminMux(local bool) *routeMux {
	mux := s.newRouteMux(map[bool]string{true: "socket-admin", false: "api-admin"}[local])
	if local {
		mux.Handle("GET /admin/v1/tokens", s.adapt(s.adminListTokens))
		mux.Handle("POST /admin/v1/tokens", s.adapt(s.adminCreateToken))
		mux.Handle("DELETE /admin/v1/tokens/{ref}", s.adapt(s.adminRevokeToken))
		mux.Handle("GET /admin/v1/users", s.adapt(s.adminListUsers))
		mux.Handle("POST /admin/v1/users", s.adapt(s.adminAddUser))
		mux.Handle("PUT /admin/v1/users/{name}/password", s.adapt(s.adminSetUserPassword))
		mux.Handle("DELETE /admin/v1/users/{name}", s.adapt(s.adminRemoveUser))
		mux.Handle("GET /admin/v1/backup", s.adapt(s.adminBackup))
	}

	mux.Handle("GET /admin/v1/info", s.adapt(s.handleInfo))
	mux.Handle("GET /admin/v1/content", s.adapt(s.listContent))
	mux.Handle("POST /admin/v1/content", s.adapt(s.createContent))
	mux.Handle("POST /admin/v1/content/import", s.adapt(s.importContent))
	mux.Handle("GET /admin/v1/content/{id}/export", s.adapt(s.exportContent))
	mux.Handle("PUT /admin/v1/content/{id}/versions/{no}/data", s.adapt(s.fillContentVersion))
	mux.Handle("GET /admin/v1/content/{id}", s.adapt(s.getContent))
	mux.Handle("DELETE /admin/v1/content/{id}", s.adapt(s.deleteContent))
	mux.Handle("POST /admin/v1/content/{id}/versions", s.adapt(s.addContentVersion))
	mux.Handle("GET /admin/v1/content/{id}/versions/{no}", s.adapt(s.getContentVersion))
	mux.Handle("PATCH /admin/v1/content/{id}/versions/{no}", s.adapt(s.patchContentVersion))
	mux.Handle("DELETE /admin/v1/content/{id}/versions/{no}", s.adapt(s.deleteContentVersion))
	mux.Handle("GET /admin/v1/content/{id}/versions/{no}/data", s.adapt(s.downloadContentVersion))
	mux.Handle("POST /admin/v1/content/verify", s.adapt(s.adminVerifyContent))
	mux.Handle("GET /admin/v1/multicast", s.adapt(s.adminListMulticast))
	mux.Handle("POST /admin/v1/multicast", s.adapt(s.adminStartMulticast))
	mux.Handle("DELETE /admin/v1/multicast/{id}", s.adapt(s.adminStopMulticast))

	mux.Handle("GET /admin/v1/stepdefs", s.adapt(s.listStepDefs))
	mux.Handle("GET /admin/v1/stepdefs/{id}", s.adapt(s.getStepDef))
	mux.Handle("POST /admin/v1/stepdefs/import", s.adapt(s.importStepDef))
	mux.Handle("GET /admin/v1/stepdefs/{id}/export", s.adapt(s.exportStepDef))
	mux.Handle("DELETE /admin/v1/stepdefs/{id}", s.adapt(s.deleteStepDef))

	mux.Handle("GET /admin/v1/tasksequences", s.adapt(s.listTS))
	mux.Handle("POST /admin/v1/tasksequences/import", s.adapt(s.importTS))
	mux.Handle("POST /admin/v1/tasksequences/validate", s.adapt(s.validateTS))
	mux.Handle("POST /admin/v1/tasksequences/new", s.adapt(s.newTS))
	mux.Handle("GET /admin/v1/tasksequences/templates", s.adapt(s.listTemplates))
	mux.Handle("GET /admin/v1/tasksequences/{id}", s.adapt(s.getTS))
	mux.Handle("PUT /admin/v1/tasksequences/{id}", s.adapt(s.putTS))
	mux.Handle("GET /admin/v1/tasksequences/{id}/export", s.adapt(s.exportTS))
	mux.Handle("DELETE /admin/v1/tasksequences/{id}", s.adapt(s.deleteTS))

	mux.Handle("GET /admin/v1/passcode", s.adapt(s.adminPasscodeStatus))
	mux.Handle("PUT /admin/v1/passcode", s.adapt(s.adminPasscodeSet))
	mux.Handle("DELETE /admin/v1/passcode", s.adapt(s.adminPasscodeClear))
	mux.Handle("POST /admin/v1/passcode/generate", s.adapt(s.adminPasscodeGenerate))
	mux.Handle("POST /admin/v1/passcode/rotate", s.adapt(s.adminPasscodeRotate))
	mux.Handle("GET /admin/v1/sessions", s.adapt(s.adminSessions))
	mux.Handle("DELETE /admin/v1/sessions/{id}", s.adapt(s.adminRevokeSession))
	mux.Handle("DELETE /admin/v1/sessions", s.adapt(s.adminRevokeSessions))
	mux.Handle("GET /admin/v1/security", s.adapt(s.adminSecurity))
	mux.Handle("PUT /admin/v1/security/anonymous", s.adapt(s.adminSetAnonymous))
	mux.Handle("PUT /admin/v1/security/entra", s.adapt(s.adminSetEntra))
	mux.Handle("PUT /admin/v1/security/passcode-alongside", s.adapt(s.adminSetPasscodeAlongside))
	mux.Handle("PUT /admin/v1/security/secure-boot", s.adapt(s.adminSetSecureBoot))
	mux.Handle("DELETE /admin/v1/security/entra", s.adapt(s.adminClearEntra))
	mux.Handle("GET /admin/v1/audit", s.adapt(s.adminAudit))
	mux.Handle("GET /admin/v1/audit/verify", s.adapt(s.adminAuditVerify))

	mux.Handle("GET /admin/v1/runs", s.adapt(s.adminListRuns))
	mux.Handle("GET /admin/v1/runs/{id}", s.adapt(s.adminGetRun))
	mux.Handle("GET /admin/v1/runs/{id}/events", s.adapt(s.adminRunEvents))
	mux.Handle("GET /admin/v1/runs/{id}/logs", s.adapt(s.adminRunLogs))
	mux.Handle("POST /admin/v1/runs/{id}/cancel", s.adapt(s.adminCancelRun))

	mux.Handle("GET /admin/v1/devices", s.adapt(s.adminListDevices))
	mux.Handle("GET /admin/v1/devices/{id}", s.adapt(s.adminGetDevice))
	mux.Handle("PUT /admin/v1/devices/{id}/nextboot", s.adapt(s.adminSetNextBoot))
	mux.Handle("GET /admin/v1/bootimages", s.adapt(s.adminBootImages))
	mux.Handle("GET /admin/v1/bootimages/{arch}/iso", s.adapt(s.adminBootImageISO))
	return mux
}

// recoverer turns a handler panic into a logged 500 instead of a dropped
// connection.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "path", r.URL.Path, "panic", v)
				writeJSON(w, http.StatusInternalServerError, wire.ErrorBody{Error: wire.ErrorDetail{Code: deploy.KindInternal, Message: "internal error"}})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) handleCACert(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(s.tls.CAPEM)
	return nil
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, wire.ServerInfo{PublicURL: s.PublicURL(), BootURL: s.BootURL(), CASHA256: s.CAFingerprint()})
	return nil
}
