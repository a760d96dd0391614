package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imprint-osd/imprint/internal/auth"
	"github.com/imprint-osd/imprint/internal/bootimage"
	"github.com/imprint-osd/imprint/internal/deploy"
	"github.com/imprint-osd/imprint/internal/wire"
)

// Devices, their next-boot default, run cancel and boot images: the admin
// API the console's devices and boot-images pages call (and any admin
// token holder).

func (s *Server) adminListDevices(w http.ResponseWriter, r *http.Request) error {
	all, err := s.store.Devices(r.Context())
	if err != nil {
		return err
	}
	nb, err := s.store.NextBoots(r.Context())
	if err != nil {
		return err
	}
	out := make([]wire.DeviceView, 0, len(all))
	for _, d := range all {
		v := wire.DeviceView{Device: d, NextBoot: deploy.NextBootAuto}
		if c, ok := nb[d.ID]; ok {
			v.NextBoot = c
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) adminGetDevice(w http.ResponseWriter, r *http.Request) error {
	id, err := pathDeviceID(r)
	if err != nil {
		return err
	}
	d, err := s.store.Device(r.Context(), id)
	if err != nil {
		return err
	}
	bs, err := s.store.BootState(r.Context(), d.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.DeviceView{Device: d, NextBoot: bs.NextBoot})
	return nil
}

// adminSetNextBoot sets what a device's boot menu starts on next time:
// deploy (re-image it), local (leave it alone) or auto.
func (s *Server) adminSetNextBoot(w http.ResponseWriter, r *http.Request) error {
	var req wire.NextBootRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	id, err := pathDeviceID(r)
	if err != nil {
		return err
	}
	d, err := s.store.Device(r.Context(), id)
	if err != nil {
		return err
	}
	// One write of this device's choice (KindInvalid for a value that is
	// not one): no read-modify-write of other devices' choices.
	if err := s.store.SetNextBoot(r.Context(), d.ID, req.NextBoot); err != nil {
		return err
	}
	s.record(r.Context(), &deploy.AuditEvent{Action: "device.nextboot", Outcome: auth.OutcomeSuccess, Actor: actor(r.Context()),
		DeviceID: d.ID, Details: map[string]string{"nextBoot": string(req.NextBoot)}})
	writeJSON(w, http.StatusOK, wire.DeviceView{Device: d, NextBoot: req.NextBoot})
	return nil
}

// adminCancelRun ends a pending or running run as canceled and revokes
// its session, so its agent can post nothing more (machineRunEvents
// refuses a canceled run even from a later session of the device).
func (s *Server) adminCancelRun(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id, err := pathID(r, "run")
	if err != nil {
		return err
	}
	run, err := s.store.Run(ctx, id)
	if err != nil {
		return err
	}
	now := s.now()
	if err := run.Cancel(now, actor(ctx)); err != nil {
		return err
	}
	if err := s.store.UpdateRun(ctx, run); err != nil {
		return err
	}
	s.feed.publish(run.ID)
	n := 0
	if run.SessionID != "" {
		if n, err = s.store.RevokeSessions(ctx, deploy.SessionFilter{ID: run.SessionID}, now); err != nil {
			return err
		}
	}
	s.record(ctx, &deploy.AuditEvent{Action: "run.cancel", Outcome: auth.OutcomeSuccess, Actor: actor(ctx), DeviceID: run.DeviceID,
		Details: map[string]string{"run": run.ID, "taskSequence": run.TaskSequenceID, "sessionRevoked": map[bool]string{true: "yes", false: "no"}[n > 0]}})
	writeJSON(w, http.StatusOK, run)
	return nil
}

func (s *Server) adminBootImages(w http.ResponseWriter, r *http.Request) error {
	dir := BootImagesDir(s.cfg.DataDir)
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	out := []wire.BootImage{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		v := wire.BootImage{Arch: e.Name()}
		sub := filepath.Join(dir, e.Name())
		var m bootimage.Manifest
		b, err := os.ReadFile(filepath.Join(sub, bootimage.ManifestName))
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		if err != nil {
			v.Error = "no readable " + bootimage.ManifestName + ": rebuild it with `imprint bootimage build`"
		}
		v.KernelVersion, v.KernelSigned, v.SignedChain = m.KernelVersion, m.KernelSigned, m.SignedChain != nil
		for _, f := range []string{bootimage.VmlinuzName, bootimage.InitrdName} {
			fi, err := os.Stat(filepath.Join(sub, f))
			if err != nil {
				if v.Error == "" {
					v.Error = f + " is missing: rebuild it with `imprint bootimage build`"
				}
				continue
			}
			v.Size += fi.Size()
			if fi.ModTime().After(v.Built) {
				v.Built = fi.ModTime().UTC()
			}
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// adminBootImageISO builds the hybrid BIOS+UEFI ISO of one boot image
// for this server (its public URL and CA fingerprint built in), as
// `imprint bootimage iso` does, and sends it.
func (s *Server) adminBootImageISO(w http.ResponseWriter, r *http.Request) error {
	arch := r.PathValue("arch")
	if filepath.Base(arch) != arch || strings.HasPrefix(arch, ".") {
		return deploy.Errorf(deploy.KindInvalid, "arch: %q is not a boot image name", arch)
	}
	img, err := bootimage.LoadImage(filepath.Join(BootImagesDir(s.cfg.DataDir), arch))
	if errors.Is(err, os.ErrNotExist) {
		return deploy.Errorf(deploy.KindNotFound, "no boot image %s: build one with `imprint bootimage build`", arch)
	}
	if err != nil {
		return deploy.Wrap(deploy.KindConflict, err, err.Error())
	}
	tmp, err := os.MkdirTemp(s.cfg.DataDir, ".iso-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "imprint-"+arch+".iso")
	if err := bootimage.BuildISO(r.Context(), out, img, s.PublicURL(), s.CAFingerprint()); err != nil {
		return deploy.Wrap(deploy.KindUnavailable, err, err.Error())
	}
	f, err := os.Open(out)
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/x-iso9660-image")
	w.Header().Set("Content-Disposition", `attachment; filename="imprint-`+arch+`.iso"`)
	http.ServeContent(w, r, "", time.Time{}, f)
	return nil
}
