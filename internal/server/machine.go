package server

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/stepdefs"
	"github.com/imprint-osd/imprint/internal/windrivers"
	"github.com/imprint-osd/imprint/internal/wire"
)

func (s *Server) handleTime(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, wire.Time{Unix: s.now().Unix()})
	return nil
}

// runnableVersion is the newest Active version of ts, or nil.
func runnableVersion(ts *deploy.TaskSequence) *deploy.TSVersion {
	var best *deploy.TSVersion
	for i := range ts.Versions {
		v := &ts.Versions[i]
		if v.Status == deploy.StatusActive && (best == nil || v.VersionNo > best.VersionNo) {
			best = v
		}
	}
	return best
}

// machineListTS lists what a technician may pick: the runnable sequences,
// or, once the session is bound to one, only that one.
func (s *Server) machineListTS(w http.ResponseWriter, r *http.Request) error {
	all, err := s.store.TaskSequences(r.Context())
	if err != nil {
		return err
	}
	bound := sessionFrom(r.Context()).TaskSequenceID
	out := []wire.TSSummary{}
	for _, ts := range all {
		if bound != "" && ts.ID != bound {
			continue
		}
		if v := runnableVersion(ts); v != nil {
			out = append(out, wire.TSSummary{ID: ts.ID, Name: ts.Name, Description: deploy.Str(ts.Description), VersionNo: v.VersionNo, Status: v.Status})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
	return nil
}

// machineGetTS hands the agent one version and binds the session to the
// sequence: from then on the session reads only content it references.
func (s *Server) machineGetTS(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess := sessionFrom(ctx)
	ts, v, err := s.pathTSVersion(r)
	if err != nil {
		return err
	}
	// Out of scope answers exactly like a sequence that does not exist
	// (security.md TK-2), so a session cannot probe for others.
	if sess.TaskSequenceID != "" && sess.TaskSequenceID != ts.ID {
		// A child the bound sequence runs (Run task sequence) is part of
		// it, whatever the child version's status.
		sc, err := s.scope(ctx, sess)
		if err != nil {
			return err
		}
		if !sc.children[deploy.Ref{ID: ts.ID, VersionNo: v.VersionNo}] {
			return errNoTS(ts.ID, r)
		}
	} else if v.Status != deploy.StatusActive {
		return errNoTS(ts.ID, r)
	}
	if sess.TaskSequenceID == "" {
		if err := s.sessions.Bind(ctx, sess, ts.ID); err != nil {
			return err
		}
	}
	out := *ts
	out.Versions = []deploy.TSVersion{*v}
	if sess.Method == auth.MethodAnonymous {
		s.stripSecrets(ctx, out.Versions[0].Steps)
	}
	writeJSON(w, http.StatusOK, &out)
	return nil
}

// errNoTS is the one answer for a sequence version a session may not have:
// unknown, out of its scope, or not Active. id is the path's, as pathID
// read it.
func errNoTS(id string, r *http.Request) error {
	return deploy.Errorf(deploy.KindNotFound, "task sequence %s version %s not found", id, r.PathValue("no"))
}

// pathTSVersion resolves {id}/{no}. Callers check scope and status: only
// Active versions are runnable, except children of the bound sequence.
func (s *Server) pathTSVersion(r *http.Request) (*deploy.TaskSequence, *deploy.TSVersion, error) {
	no, err := strconv.Atoi(r.PathValue("no"))
	if err != nil || no < 1 {
		return nil, nil, deploy.Errorf(deploy.KindInvalid, "version %q is not a positive number", r.PathValue("no"))
	}
	id, err := pathID(r, "task sequence")
	if err != nil {
		return nil, nil, err
	}
	ts, err := s.store.TaskSequence(r.Context(), id)
	if deploy.IsNotFound(err) {
		return nil, nil, errNoTS(id, r)
	} else if err != nil {
		return nil, nil, err
	}
	v, ok := ts.Version(no)
	if !ok {
		return nil, nil, errNoTS(id, r)
	}
	return ts, v, nil
}

// stripSecrets blanks the values of Password options: secret variables
// never reach an anonymous session. Every stored step is visited, run or
// not, since the whole document is sent.
func (s *Server) stripSecrets(ctx context.Context, steps []deploy.Step) {
	for at := range deploy.AllSteps(steps) {
		st := at.Step
		if st.TypeID == nil {
			continue
		}
		def, err := resolver{s.store}.StepDefinition(ctx, *st.TypeID)
		if err != nil {
			continue
		}
		dv := def.Latest()
		if v, ok := def.ResolveVersion(deploy.Str(st.StepDefinitionVersionID), st.StepDefinitionVersionNo); ok {
			dv = v
		}
		if dv == nil {
			continue
		}
		for _, o := range dv.Options {
			if o.Type != deploy.OptionPassword {
				continue
			}
			for k := range st.Settings {
				if strings.EqualFold(k, o.Name) {
					st.Settings[k] = ""
				}
			}
		}
	}
}

func (s *Server) machineGetStepDef(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "step definition")
	if err != nil {
		return err
	}
	d, err := resolver{s.store}.StepDefinition(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// sessionScope is what a session's task sequence may reach: every content
// "guid:version" its steps reference (with their definitions' default
// content and application dependencies, transitively), every child
// sequence it runs and the ScriptName of every Run server-side script step.
// A sequence with an Inject drivers step may also reach every DriverPack
// version that step could choose (driverPackVisible).
type sessionScope struct {
	content  map[deploy.Ref]bool
	children map[deploy.Ref]bool
	scripts  map[string]bool
	drivers  bool
}

// driverPackVisible reports whether Inject drivers may choose version v
// of item: a DriverPack whose version is Active or In_Development and has
// its bytes (windrivers.MatchPack never picks a Deprecated one).
func driverPackVisible(item *deploy.ContentItem, v *deploy.ContentVersion) bool {
	return item.Purpose == deploy.PurposeDriverPack && !v.AwaitingContent &&
		(v.Status == deploy.StatusActive || v.Status == deploy.StatusInDevelopment)
}

func (s *Server) scope(ctx context.Context, sess *deploy.Session) (*sessionScope, error) {
	scope := map[deploy.Ref]bool{}
	seen := map[deploy.Ref]bool{}
	sc := &sessionScope{content: scope, children: seen, scripts: map[string]bool{}}
	if sess.TaskSequenceID == "" {
		return sc, nil
	}
	ts, err := s.store.TaskSequence(ctx, sess.TaskSequenceID)
	if err != nil {
		return nil, err
	}
	var walkTS func(ts *deploy.TaskSequence, v *deploy.TSVersion) error
	var walk func(steps []deploy.Step) error
	addContent := func(ref string) {
		if r, err := deploy.ParseRef(ref); err == nil {
			scope[r] = true
		}
	}
	walk = func(steps []deploy.Step) error {
		for at := range deploy.AllSteps(steps) {
			st := at.Step
			for _, val := range st.ContentItems {
				for _, ref := range deploy.ContentList(val) {
					addContent(ref)
				}
			}
			if st.TypeID == nil {
				continue
			}
			// Stored typeIds may predate normalisation on entry: SameID.
			if deploy.SameID(*st.TypeID, stepdefs.TypeInjectDrivers) {
				sc.drivers = true
			}
			if deploy.SameID(*st.TypeID, stepdefs.TypeRunServerScript) {
				for k, v := range st.Settings {
					if strings.EqualFold(k, "ScriptName") && strings.TrimSpace(v) != "" {
						sc.scripts[strings.TrimSpace(v)] = true
					}
				}
			}
			if deploy.SameID(*st.TypeID, deploy.TypeRunTaskSequence) {
				for k, v := range st.Settings {
					if !strings.EqualFold(k, "childTaskSequenceId") {
						continue
					}
					ref, err := deploy.ParseRef(v)
					if err != nil || seen[ref] {
						continue
					}
					seen[ref] = true
					child, err := s.store.TaskSequence(ctx, ref.ID)
					if deploy.IsNotFound(err) {
						continue
					} else if err != nil {
						return err
					}
					if cv, ok := child.Version(ref.VersionNo); ok {
						if err := walkTS(child, cv); err != nil {
							return err
						}
					}
				}
			}
			if def, err := (resolver{s.store}).StepDefinition(ctx, *st.TypeID); err == nil {
				dv, ok := def.ResolveVersion(deploy.Str(st.StepDefinitionVersionID), st.StepDefinitionVersionNo)
				if !ok {
					dv = def.Latest()
				}
				if dv != nil {
					for _, o := range dv.Options {
						if o.IsContent() && o.DefaultValue != nil {
							addContent(*o.DefaultValue)
						}
					}
				}
			}
		}
		return nil
	}
	walkTS = func(ts *deploy.TaskSequence, v *deploy.TSVersion) error { return walk(v.Steps) }
	for i := range ts.Versions {
		if err := walkTS(ts, &ts.Versions[i]); err != nil {
			return nil, err
		}
	}
	// Application dependencies, transitively.
	queue := make([]deploy.Ref, 0, len(scope))
	for r := range scope {
		queue = append(queue, r)
	}
	for len(queue) > 0 {
		ref := queue[0]
		queue = queue[1:]
		item, err := s.store.ContentItem(ctx, ref.ID)
		if err != nil {
			continue
		}
		if v, ok := item.Version(ref.VersionNo); ok {
			for _, d := range v.InstallationDependencies {
				if dr, err := deploy.ParseRef(d); err == nil && !scope[dr] {
					scope[dr] = true
					queue = append(queue, dr)
				}
			}
		}
	}
	return sc, nil
}

// scopedVersion resolves {id}/{no} for a session. Content outside the
// session's scope answers exactly like content that does not exist.
func (s *Server) scopedVersion(r *http.Request) (*deploy.ContentItem, *deploy.ContentVersion, error) {
	ctx := r.Context()
	no, _ := strconv.Atoi(r.PathValue("no"))
	id, err := pathID(r, "content item")
	if err != nil {
		return nil, nil, err
	}
	notFound := deploy.Errorf(deploy.KindNotFound, "content %s:%s not found", id, r.PathValue("no"))
	sc, err := s.scope(ctx, sessionFrom(ctx))
	if err != nil {
		return nil, nil, err
	}
	inScope := sc.content[deploy.Ref{ID: id, VersionNo: no}]
	if !inScope && !sc.drivers {
		return nil, nil, notFound
	}
	item, err := s.store.ContentItem(ctx, id)
	if deploy.IsNotFound(err) {
		return nil, nil, notFound
	} else if err != nil {
		return nil, nil, err
	}
	v, ok := item.Version(no)
	if !ok || (!inScope && !driverPackVisible(item, v)) {
		return nil, nil, notFound
	}
	if v.AwaitingContent {
		return nil, nil, deploy.Errorf(deploy.KindConflict, "content %s:%d is awaiting content: it was imported without its bytes", id, no)
	}
	return item, v, nil
}

func (s *Server) machineContentInfo(w http.ResponseWriter, r *http.Request) error {
	item, v, err := s.scopedVersion(r)
	if err != nil {
		return err
	}
	meta := *item
	meta.Versions = nil
	writeJSON(w, http.StatusOK, wire.ContentInfo{Item: meta, Version: *v})
	return nil
}

func (s *Server) machineContentData(w http.ResponseWriter, r *http.Request) error {
	item, v, err := s.scopedVersion(r)
	if err != nil {
		return err
	}
	return s.serveVersion(w, r, item, v)
}

func (s *Server) machineContentFile(w http.ResponseWriter, r *http.Request) error {
	item, v, err := s.scopedVersion(r)
	if err != nil {
		return err
	}
	path := r.PathValue("path")
	if v.Manifest != nil {
		for _, f := range v.Manifest.Files {
			if f.Path == path {
				fh, err := s.blobs.Open(r.Context(), f.SHA256)
				if err != nil {
					return s.damagedBlob(r.Context(), err, item, v, f.SHA256)
				}
				defer fh.Close()
				s.serveBlob(w, r, fh, f.SHA256, path)
				return nil
			}
		}
	}
	return deploy.Errorf(deploy.KindNotFound, "content %s:%d has no file %q", item.ID, v.VersionNo, path)
}

// machineCapture receives a captured image as a new In_Development version
// of a content item. Only a session whose task sequence has a Capture
// image step targeting that item may upload, so a deployment session
// cannot write arbitrary content.
func (s *Server) machineCapture(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sess := sessionFrom(ctx)
	id, err := pathID(r, "content item")
	if err != nil {
		return err
	}
	notFound := deploy.Errorf(deploy.KindNotFound, "content item %s not found", id)
	if sess.TaskSequenceID == "" {
		return notFound
	}
	ts, err := s.store.TaskSequence(ctx, sess.TaskSequenceID)
	if err != nil {
		return err
	}
	allowed := false
	for i := range ts.Versions {
		for at := range deploy.AllSteps(ts.Versions[i].Steps) {
			st := at.Step
			if st.TypeID == nil || !deploy.SameID(*st.TypeID, stepdefs.TypeCaptureImage) {
				continue
			}
			for k, v := range st.Settings {
				if strings.EqualFold(k, "TargetContentItem") && deploy.SameID(v, id) {
					allowed = true
				}
			}
		}
	}
	if !allowed {
		return notFound
	}
	item, err := s.store.ContentItem(ctx, id)
	if deploy.IsNotFound(err) {
		return notFound
	} else if err != nil {
		return err
	}
	if item.Type != deploy.ContentFile || item.ReadOnly {
		return deploy.Errorf(deploy.KindConflict, "content item %s cannot receive a captured image (it must be a writable File item)", id)
	}
	desc := "Captured on device " + sess.DeviceID + " by task sequence " + ts.Name
	v := &deploy.ContentVersion{Status: deploy.StatusInDevelopment, Description: &desc}
	stored, err := s.storeVersion(ctx, item, v, r.Body)
	if err != nil {
		return err
	}
	s.record(ctx, &deploy.AuditEvent{Action: "content.capture", Outcome: auth.OutcomeSuccess, DeviceID: sess.DeviceID,
		Details: map[string]string{"item": id, "version": itoa(stored.VersionNo), "sha256": stored.SHA256}})
	writeJSON(w, http.StatusCreated, stored)
	return nil
}

// machineDriverPacks lists the DriverPack versions Inject drivers may
// choose from (GET /v1/driverpacks): for a session whose task sequence has
// an Inject drivers step, every Active and In_Development version of every
// DriverPack item with its Manufacturer and Model; for any other session
// none. The agent applies DeployR's matching rule (windrivers.MatchPack).
func (s *Server) machineDriverPacks(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	sc, err := s.scope(ctx, sessionFrom(ctx))
	if err != nil {
		return err
	}
	out := []windrivers.Pack{}
	if sc.drivers {
		items, err := s.store.ContentItems(ctx)
		if err != nil {
			return err
		}
		for _, item := range items {
			for i := range item.Versions {
				v := &item.Versions[i]
				if !driverPackVisible(item, v) {
					continue
				}
				out = append(out, windrivers.Pack{ID: item.ID, Name: item.Name, VersionNo: v.VersionNo, Status: v.Status,
					Manufacturer: deploy.Str(v.DriverManufacturer), Model: deploy.Str(v.DriverModel)})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].VersionNo < out[j].VersionNo
	})
	writeJSON(w, http.StatusOK, out)
	return nil
}
