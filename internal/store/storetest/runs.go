package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// base is a fixed instant in a non-UTC zone, at microsecond precision (what
// every store keeps), so that round trips can check the zone is UTC.
func base() time.Time {
	return time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.FixedZone("CET", 3600))
}

// checkUTC fails unless every time is in UTC.
func checkUTC(t *testing.T, what string, ts ...time.Time) {
	t.Helper()
	for i, x := range ts {
		if x.Location() != time.UTC {
			t.Errorf("%s: time %d (%v) is in %v, want UTC", what, i, x, x.Location())
		}
	}
}

func testDevices(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	d := &deploy.Device{
		UUID: "4C4C4544-0042-3510-8052-B4C04F4E3332", MACs: []string{"52:54:00:12:34:56"},
		SerialNumber: "SN1", Make: "Dell Inc.", Model: "Latitude", FirstSeen: base(), LastSeen: base(),
	}
	must(t, "UpsertDevice", s.UpsertDevice(ctx(t), d))
	checkGUID(t, "device ID", d.ID)
	got, err := s.Device(ctx(t), d.ID)
	must(t, "Device", err)
	if diff := cmp.Diff(d, got); diff != "" {
		t.Errorf("stored device (-want +got):\n%s", diff)
	}
	checkUTC(t, "device", got.FirstSeen, got.LastSeen)

	later := base().Add(time.Hour)
	upd := &deploy.Device{ID: d.ID, UUID: d.UUID, Name: "pc-01", LastSeen: later}
	must(t, "UpsertDevice again", s.UpsertDevice(ctx(t), upd))
	got, err = s.Device(ctx(t), d.ID)
	must(t, "Device", err)
	if !got.FirstSeen.Equal(base()) || !got.LastSeen.Equal(later) || got.Name != "pc-01" {
		t.Errorf("after second upsert: firstSeen %v lastSeen %v name %q; want %v, %v, pc-01",
			got.FirstSeen, got.LastSeen, got.Name, base(), later)
	}

	byID := &deploy.Device{ID: "4c4c4544-0042-3510-8052-b4c04f4e3333"}
	must(t, "UpsertDevice with id", s.UpsertDevice(ctx(t), byID))
	if byID.ID != "4c4c4544-0042-3510-8052-b4c04f4e3333" || byID.FirstSeen.IsZero() || byID.LastSeen.IsZero() {
		t.Errorf("upsert with zero times: id %q firstSeen %v lastSeen %v; want id kept and times set", byID.ID, byID.FirstSeen, byID.LastSeen)
	}

	old := &deploy.Device{ID: "mac-52-54-00-00-00-01", LastSeen: base().Add(-time.Hour)}
	must(t, "UpsertDevice old", s.UpsertDevice(ctx(t), old))
	all, err := s.Devices(ctx(t))
	must(t, "Devices", err)
	var ids []string
	for _, x := range all {
		ids = append(ids, x.ID)
	}
	// byID was seen now (after base()+1h), d at base()+1h, old an hour before base().
	if want := []string{byID.ID, d.ID, old.ID}; !slices.Equal(ids, want) {
		t.Errorf("Devices = %v, want %v (most recently seen first)", ids, want)
	}
	if len(all) == 3 && all[1].Name != "pc-01" {
		t.Errorf("Devices()[1].Name = %q, want the stored pc-01", all[1].Name)
	}
}

func newRun(device, ts string, state deploy.RunState, started time.Time) *deploy.Run {
	return &deploy.Run{DeviceID: device, TaskSequenceID: ts, VersionNo: 1, State: state, StartedAt: started}
}

func testRunRoundTrip(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	code := 3010
	ended := base().Add(time.Minute)
	r := &deploy.Run{
		DeviceID: "dev", TaskSequenceID: "ts", VersionNo: 2, SessionID: "sess", State: deploy.RunRunning,
		CurrentStep: "s2", StartedAt: base(),
		Steps: []deploy.StepResult{
			{StepID: "s1", Name: "Format", Path: "WinPE/Format", Outcome: deploy.StepSucceeded, ExitCode: &code,
				Message: "ok", OutputTail: "done\n", StartedAt: base().Add(time.Second), Duration: 1.5},
			{StepID: "s2", Name: "Apply", Path: "WinPE/Apply", Outcome: deploy.StepRunning, StartedAt: base().Add(2 * time.Second)},
		},
	}
	must(t, "CreateRun", s.CreateRun(ctx(t), r))
	checkGUID(t, "run ID", r.ID)
	if r.UpdatedAt.IsZero() {
		t.Errorf("CreateRun left UpdatedAt zero")
	}
	got, err := s.Run(ctx(t), r.ID)
	must(t, "Run", err)
	if d := cmp.Diff(r, got); d != "" {
		t.Errorf("stored run (-want +got):\n%s", d)
	}
	checkUTC(t, "run", got.StartedAt, got.UpdatedAt, got.Steps[0].StartedAt)

	dup := newRun("dev", "ts", deploy.RunPending, base())
	dup.ID = r.ID
	wantKind(t, "CreateRun with an existing id", s.CreateRun(ctx(t), dup), deploy.KindConflict)
	wantKind(t, "CreateRun with an unknown state", s.CreateRun(ctx(t), newRun("d", "t", "exploded", base())), deploy.KindInvalid)

	pending := newRun("dev", "ts", "", base())
	must(t, "CreateRun without state", s.CreateRun(ctx(t), pending))
	if pending.State != deploy.RunPending {
		t.Errorf("run created without a state is %q, want pending", pending.State)
	}

	got.State = deploy.RunFailed
	got.EndedAt = &ended
	got.Error = "step Apply failed"
	must(t, "UpdateRun", s.UpdateRun(ctx(t), got))
	again, err := s.Run(ctx(t), r.ID)
	must(t, "Run", err)
	if d := cmp.Diff(got, again); d != "" {
		t.Errorf("updated run (-want +got):\n%s", d)
	}
	checkUTC(t, "updated run", *again.EndedAt)
	if again.UpdatedAt.Before(r.UpdatedAt) {
		t.Errorf("UpdateRun moved UpdatedAt back: %v < %v", again.UpdatedAt, r.UpdatedAt)
	}
}

func testRunsFilter(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	runs := map[string]*deploy.Run{
		"r1": newRun("devA", "ts1", deploy.RunSucceeded, base()),
		"r2": newRun("devA", "ts2", deploy.RunRunning, base().Add(1*time.Minute)),
		"r3": newRun("devB", "ts1", deploy.RunFailed, base().Add(2*time.Minute)),
		"r4": newRun("devB", "ts1", deploy.RunRunning, base().Add(3*time.Minute)),
		"r5": newRun("devA", "ts1", deploy.RunPending, base().Add(4*time.Minute)),
	}
	names := map[string]string{}
	for _, k := range []string{"r3", "r1", "r5", "r2", "r4"} { // insertion order is not the answer
		must(t, "CreateRun", s.CreateRun(ctx(t), runs[k]))
		names[runs[k].ID] = k
	}
	cases := []struct {
		name string
		f    deploy.RunFilter
		want []string
	}{
		{"all newest first", deploy.RunFilter{}, []string{"r5", "r4", "r3", "r2", "r1"}},
		{"device", deploy.RunFilter{DeviceID: "devA"}, []string{"r5", "r2", "r1"}},
		{"task sequence", deploy.RunFilter{TaskSequenceID: "ts1"}, []string{"r5", "r4", "r3", "r1"}},
		{"state", deploy.RunFilter{State: deploy.RunRunning}, []string{"r4", "r2"}},
		{"device and task sequence", deploy.RunFilter{DeviceID: "devB", TaskSequenceID: "ts1"}, []string{"r4", "r3"}},
		{"all three", deploy.RunFilter{DeviceID: "devA", TaskSequenceID: "ts1", State: deploy.RunSucceeded}, []string{"r1"}},
		{"limit", deploy.RunFilter{Limit: 2}, []string{"r5", "r4"}},
		{"limit with filter", deploy.RunFilter{DeviceID: "devA", Limit: 1}, []string{"r5"}},
		{"limit above count", deploy.RunFilter{State: deploy.RunFailed, Limit: 10}, []string{"r3"}},
		{"no match", deploy.RunFilter{DeviceID: "devC"}, nil},
	}
	for _, tc := range cases {
		got, err := s.Runs(ctx(t), tc.f)
		must(t, tc.name, err)
		var ids []string
		for _, r := range got {
			ids = append(ids, names[r.ID])
		}
		if d := cmp.Diff(tc.want, ids); d != "" {
			t.Errorf("%s: Runs(%+v) (-want +got):\n%s", tc.name, tc.f, d)
		}
	}
	_, err := s.Runs(ctx(t), deploy.RunFilter{Limit: -1})
	wantKind(t, "Runs with a negative limit", err, deploy.KindInvalid)
}

func testRunEvents(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	a := newRun("dev", "ts", deploy.RunRunning, base())
	b := newRun("dev", "ts", deploy.RunRunning, base())
	must(t, "CreateRun", s.CreateRun(ctx(t), a))
	must(t, "CreateRun", s.CreateRun(ctx(t), b))

	appends := []struct {
		run     *deploy.Run
		msg     string
		wantSeq int64
	}{
		{a, "a1", 1}, {b, "b1", 1}, {a, "a2", 2}, {a, "a3", 3}, {b, "b2", 2},
	}
	var sent []*deploy.RunEvent
	for i, ap := range appends {
		e := &deploy.RunEvent{RunID: ap.run.ID, Type: "log", StepID: "s1", Message: ap.msg,
			Time: base().Add(time.Duration(i) * time.Second), Data: []byte(`{"percent":` + string(rune('0'+i)) + `}`)}
		must(t, "AppendRunEvent", s.AppendRunEvent(ctx(t), e))
		if e.Seq != ap.wantSeq {
			t.Errorf("event %s got seq %d, want %d", ap.msg, e.Seq, ap.wantSeq)
		}
		sent = append(sent, e)
	}
	noTime := &deploy.RunEvent{RunID: b.ID, Type: "progress"}
	must(t, "AppendRunEvent without time", s.AppendRunEvent(ctx(t), noTime))
	if noTime.Time.IsZero() || noTime.Seq != 3 {
		t.Errorf("event without time: time %v seq %d; want now and 3", noTime.Time, noTime.Seq)
	}

	cases := []struct {
		run   *deploy.Run
		after int64
		want  []*deploy.RunEvent
	}{
		{a, 0, []*deploy.RunEvent{sent[0], sent[2], sent[3]}},
		{a, 1, []*deploy.RunEvent{sent[2], sent[3]}},
		{a, 3, []*deploy.RunEvent{}},
		{b, 0, []*deploy.RunEvent{sent[1], sent[4], noTime}},
	}
	for _, tc := range cases {
		got, err := s.RunEvents(ctx(t), tc.run.ID, tc.after)
		must(t, "RunEvents", err)
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("RunEvents(%s, %d) (-want +got):\n%s", tc.run.ID, tc.after, d)
		}
		for _, e := range got {
			checkUTC(t, "event", e.Time)
		}
	}

	after, err := s.Run(ctx(t), a.ID)
	must(t, "Run", err)
	if after.UpdatedAt.Before(a.UpdatedAt) {
		t.Errorf("appending events moved the run's UpdatedAt back: %v < %v", after.UpdatedAt, a.UpdatedAt)
	}
}

// testMarkLostRuns needs no clock: it compares against the UpdatedAt the
// store itself assigned.
func testMarkLostRuns(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	states := []deploy.RunState{deploy.RunPending, deploy.RunRunning, deploy.RunSucceeded,
		deploy.RunFailed, deploy.RunCanceled, deploy.RunLost}
	var runs []*deploy.Run
	var first, last time.Time
	for i, st := range states {
		r := newRun("dev", "ts", st, base().Add(time.Duration(i)*time.Minute))
		must(t, "CreateRun", s.CreateRun(ctx(t), r))
		runs = append(runs, r)
		if first.IsZero() || r.UpdatedAt.Before(first) {
			first = r.UpdatedAt
		}
		if r.UpdatedAt.After(last) {
			last = r.UpdatedAt
		}
	}
	n, err := s.MarkLostRuns(ctx(t), first)
	must(t, "MarkLostRuns(earliest update)", err)
	if n != 0 {
		t.Errorf("MarkLostRuns(before every update) = %d, want 0", n)
	}
	n, err = s.MarkLostRuns(ctx(t), last.Add(time.Millisecond))
	must(t, "MarkLostRuns(after every update)", err)
	if n != 2 {
		t.Errorf("MarkLostRuns(after every update) = %d, want 2 (pending and running)", n)
	}
	want := []deploy.RunState{deploy.RunLost, deploy.RunLost, deploy.RunSucceeded,
		deploy.RunFailed, deploy.RunCanceled, deploy.RunLost}
	for i, r := range runs {
		got, err := s.Run(ctx(t), r.ID)
		must(t, "Run", err)
		if got.State != want[i] {
			t.Errorf("run %d (%s): state %s, want %s", i, states[i], got.State, want[i])
		}
		if i < 2 && (got.EndedAt == nil || got.EndedAt.Location() != time.UTC) {
			t.Errorf("lost run %d: EndedAt = %v, want set, in UTC", i, got.EndedAt)
		}
		if i >= 2 && got.EndedAt != nil {
			t.Errorf("terminal run %d was touched: EndedAt = %v", i, got.EndedAt)
		}
	}
	n, err = s.MarkLostRuns(ctx(t), last.Add(time.Millisecond))
	must(t, "MarkLostRuns again", err)
	if n != 0 {
		t.Errorf("MarkLostRuns again = %d, want 0", n)
	}
}

func testAppendRunEvents(t *testing.T, open func(*testing.T) deploy.Store) {
	s := open(t)
	r := newRun("dev", "ts", deploy.RunRunning, base())
	must(t, "CreateRun", s.CreateRun(ctx(t), r))
	must(t, "AppendRunEvent", s.AppendRunEvent(ctx(t), &deploy.RunEvent{RunID: r.ID, Type: "log", Time: base()}))

	evs := []*deploy.RunEvent{
		{Type: "step-start", StepID: "s1", Time: base().Add(time.Second)},
		{Type: "step-end", StepID: "s1"},
	}
	r.CurrentStep = "s1"
	r.Steps = []deploy.StepResult{{StepID: "s1", Name: "One", Path: "s1", Outcome: deploy.StepSucceeded, StartedAt: base()}}
	must(t, "AppendRunEvents", s.AppendRunEvents(ctx(t), r, evs))
	for i, e := range evs {
		if e.RunID != r.ID || e.Seq != int64(i+2) || e.Time.IsZero() {
			t.Errorf("event %d after append: run %q seq %d time %v; want run %s, seq %d and a time", i, e.RunID, e.Seq, e.Time, r.ID, i+2)
		}
	}
	got, err := s.RunEvents(ctx(t), r.ID, 1)
	must(t, "RunEvents", err)
	if d := cmp.Diff(evs, got); d != "" {
		t.Errorf("stored events (-want +got):\n%s", d)
	}
	stored, err := s.Run(ctx(t), r.ID)
	must(t, "Run", err)
	if d := cmp.Diff(r, stored); d != "" {
		t.Errorf("stored run (-want +got):\n%s", d)
	}

	missing := newRun("dev", "ts", deploy.RunRunning, base())
	missing.ID = "00000000-0000-0000-0000-00000000dead"
	err = s.AppendRunEvents(ctx(t), missing, []*deploy.RunEvent{{Type: "log"}})
	if !deploy.IsNotFound(err) {
		t.Errorf("AppendRunEvents to an unknown run: %v, want not found", err)
	}
	if _, err := s.RunEvents(ctx(t), missing.ID, 0); !deploy.IsNotFound(err) {
		t.Errorf("RunEvents of the unknown run after the refused append: %v, want not found", err)
	}

	// An administrator cancels after the machine read its run and
	// before its events are written: the cancel stays, the events are
	// refused.
	stale := *r
	stale.Steps = append([]deploy.StepResult(nil), r.Steps...)
	canceled := *r
	canceled.Steps = append([]deploy.StepResult(nil), r.Steps...)
	must(t, "Cancel", canceled.Cancel(base().Add(time.Minute), "admin"))
	must(t, "UpdateRun", s.UpdateRun(ctx(t), &canceled))
	err = s.AppendRunEvents(ctx(t), &stale, []*deploy.RunEvent{{Type: "log"}})
	if deploy.ErrorKind(err) != deploy.KindConflict {
		t.Errorf("AppendRunEvents to a run canceled since it was read: %v, want conflict", err)
	}
	after, err := s.Run(ctx(t), r.ID)
	must(t, "Run", err)
	if after.State != deploy.RunCanceled {
		t.Errorf("run after a stale append: state %s, want %s", after.State, deploy.RunCanceled)
	}
	if got, err := s.RunEvents(ctx(t), r.ID, 3); err != nil || len(got) != 0 {
		t.Errorf("events after the refused append: %d, %v; want none", len(got), err)
	}

	bad := *r
	bad.State = "sideways"
	if err := s.AppendRunEvents(ctx(t), &bad, nil); deploy.ErrorKind(err) != deploy.KindInvalid {
		t.Errorf("AppendRunEvents with state %q: %v, want invalid", bad.State, err)
	}
}
