package server

import (
	"context"
	"io"
	"net/http"
	"strconv"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/multicast"
)

// newMulticast builds the session manager: sessions send a File content
// version's blob, on the PXE interface unless the request names another.
func (s *Server) newMulticast() *multicast.Manager {
	return &multicast.Manager{
		Interface: s.cfg.PXEInterface,
		Open: func(ctx context.Context, id string, no int) (io.ReadCloser, int64, string, error) {
			item, err := s.store.ContentItem(ctx, id) // canonical: adminStartMulticast
			if err != nil {
				return nil, 0, "", err
			}
			v, ok := item.Version(no)
			switch {
			case !ok:
				return nil, 0, "", deploy.Errorf(deploy.KindNotFound, "content %s has no version %d", id, no)
			case item.Type != deploy.ContentFile:
				return nil, 0, "", deploy.Errorf(deploy.KindInvalid, "content %s is a %s: only File content can be multicast", id, item.Type)
			case v.AwaitingContent:
				return nil, 0, "", deploy.Errorf(deploy.KindConflict, "content %s:%d is awaiting content", id, no)
			}
			rc, err := s.blobs.Open(ctx, v.SHA256)
			if err != nil {
				return nil, 0, "", err
			}
			return rc, v.ContentSize, v.SHA256, nil
		},
		Log: func(msg string, args ...any) { s.log.Info(msg, args...) },
	}
}

func (s *Server) adminStartMulticast(w http.ResponseWriter, r *http.Request) error {
	var req multicast.StartRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	// The session is joined by the stored item's id: it must be that form.
	id, err := deploy.ParseID("content item", req.ContentID)
	if err != nil {
		return err
	}
	req.ContentID = id
	sess, err := s.mcast.Start(s.life, req)
	if err != nil {
		return err
	}
	s.record(r.Context(), &deploy.AuditEvent{Action: "admin.multicast.start", Outcome: auth.OutcomeSuccess, Actor: actor(r.Context()),
		Details: map[string]string{"session": sess.ID, "content": sess.ContentID + ":" + strconv.Itoa(sess.VersionNo),
			"machines": strconv.Itoa(sess.Machines), "interface": sess.Interface}})
	writeJSON(w, http.StatusCreated, sess)
	return nil
}

func (s *Server) adminListMulticast(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.mcast.List())
	return nil
}

func (s *Server) adminStopMulticast(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.mcast.Stop(id); err != nil {
		return err
	}
	s.record(r.Context(), &deploy.AuditEvent{Action: "admin.multicast.stop", Outcome: auth.OutcomeSuccess, Actor: actor(r.Context()),
		Details: map[string]string{"session": id}})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// machineMulticast tells a machine about to fetch a content version which
// session to join: 200 with the session while one waits for receivers,
// 404 otherwise (the machine downloads by unicast).
func (s *Server) machineMulticast(w http.ResponseWriter, r *http.Request) error {
	item, v, err := s.scopedVersion(r)
	if err != nil {
		return err
	}
	sess, ok := s.mcast.Join(item.ID, v.VersionNo)
	if !ok {
		return deploy.Errorf(deploy.KindNotFound, "no multicast session is waiting for content %s:%d", item.ID, v.VersionNo)
	}
	sess.Interface = "" // the server's, not the machine's
	writeJSON(w, http.StatusOK, sess)
	return nil
}
