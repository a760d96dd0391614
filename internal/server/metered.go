package server

import (
	"context"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imprint-osd/imprint/internal/content"
	"github.com/imprint-osd/imprint/internal/deploy"
)

// meteredStore counts the state database's failures by operation
// (imprint_db_errors_total). It embeds the store so that a method added
// to deploy.Store later still compiles here; TestMeteredStoreCoversStore
// fails until it is counted too. Unwrap gives the store it wraps.
type meteredStore struct {
	deploy.Store
	errs *prometheus.CounterVec
}

func (m *meteredStore) fail(op string, err error) error {
	if failed(err) {
		m.errs.WithLabelValues(op).Inc()
	}
	return err
}

// Unwrap returns the store being metered.
func (m *meteredStore) Unwrap() deploy.Store { return m.Store }

// meteredBlobs counts the content store's failures by operation
// (imprint_blob_errors_total).
type meteredBlobs struct {
	content.Blobs
	errs *prometheus.CounterVec
}

func (m *meteredBlobs) fail(op string, err error) error {
	if failed(err) {
		m.errs.WithLabelValues(op).Inc()
	}
	return err
}

// Unwrap returns the content store being metered.
func (m *meteredBlobs) Unwrap() content.Blobs { return m.Blobs }

var (
	_ deploy.Store  = (*meteredStore)(nil)
	_ content.Blobs = (*meteredBlobs)(nil)
)

func (m *meteredStore) CreateContentItem(ctx context.Context, c *deploy.ContentItem) error {
	return m.fail("CreateContentItem", m.Store.CreateContentItem(ctx, c))
}

func (m *meteredStore) UpdateContentItem(ctx context.Context, c *deploy.ContentItem) error {
	return m.fail("UpdateContentItem", m.Store.UpdateContentItem(ctx, c))
}

func (m *meteredStore) ContentItem(ctx context.Context, id string) (*deploy.ContentItem, error) {
	r0, err := m.Store.ContentItem(ctx, id)
	return r0, m.fail("ContentItem", err)
}

func (m *meteredStore) ContentItems(ctx context.Context) ([]*deploy.ContentItem, error) {
	r0, err := m.Store.ContentItems(ctx)
	return r0, m.fail("ContentItems", err)
}

func (m *meteredStore) DeleteContentItem(ctx context.Context, id string) ([]string, error) {
	r0, err := m.Store.DeleteContentItem(ctx, id)
	return r0, m.fail("DeleteContentItem", err)
}

func (m *meteredStore) AddContentVersion(ctx context.Context, itemID string, v *deploy.ContentVersion) (*deploy.ContentVersion, error) {
	r0, err := m.Store.AddContentVersion(ctx, itemID, v)
	return r0, m.fail("AddContentVersion", err)
}

func (m *meteredStore) UpdateContentVersion(ctx context.Context, v *deploy.ContentVersion) error {
	return m.fail("UpdateContentVersion", m.Store.UpdateContentVersion(ctx, v))
}

func (m *meteredStore) ImportContentItem(ctx context.Context, c *deploy.ContentItem) error {
	return m.fail("ImportContentItem", m.Store.ImportContentItem(ctx, c))
}

func (m *meteredStore) FillContentVersion(ctx context.Context, itemID string, versionNo int, sha256 string, man *deploy.Manifest, size int64) (*deploy.ContentVersion, error) {
	r0, err := m.Store.FillContentVersion(ctx, itemID, versionNo, sha256, man, size)
	return r0, m.fail("FillContentVersion", err)
}

func (m *meteredStore) DeleteContentVersion(ctx context.Context, itemID string, versionNo int) ([]string, error) {
	r0, err := m.Store.DeleteContentVersion(ctx, itemID, versionNo)
	return r0, m.fail("DeleteContentVersion", err)
}

func (m *meteredStore) BlobInUse(ctx context.Context, sha256 string) (bool, error) {
	r0, err := m.Store.BlobInUse(ctx, sha256)
	return r0, m.fail("BlobInUse", err)
}

func (m *meteredStore) PutStepDefinition(ctx context.Context, d *deploy.StepDefinition) error {
	return m.fail("PutStepDefinition", m.Store.PutStepDefinition(ctx, d))
}

func (m *meteredStore) StepDefinition(ctx context.Context, id string) (*deploy.StepDefinition, error) {
	r0, err := m.Store.StepDefinition(ctx, id)
	return r0, m.fail("StepDefinition", err)
}

func (m *meteredStore) StepDefinitions(ctx context.Context) ([]*deploy.StepDefinition, error) {
	r0, err := m.Store.StepDefinitions(ctx)
	return r0, m.fail("StepDefinitions", err)
}

func (m *meteredStore) DeleteStepDefinition(ctx context.Context, id string) error {
	return m.fail("DeleteStepDefinition", m.Store.DeleteStepDefinition(ctx, id))
}

func (m *meteredStore) PutTaskSequence(ctx context.Context, t *deploy.TaskSequence) error {
	return m.fail("PutTaskSequence", m.Store.PutTaskSequence(ctx, t))
}

func (m *meteredStore) TaskSequence(ctx context.Context, id string) (*deploy.TaskSequence, error) {
	r0, err := m.Store.TaskSequence(ctx, id)
	return r0, m.fail("TaskSequence", err)
}

func (m *meteredStore) TaskSequences(ctx context.Context) ([]*deploy.TaskSequence, error) {
	r0, err := m.Store.TaskSequences(ctx)
	return r0, m.fail("TaskSequences", err)
}

func (m *meteredStore) DeleteTaskSequence(ctx context.Context, id string) error {
	return m.fail("DeleteTaskSequence", m.Store.DeleteTaskSequence(ctx, id))
}

func (m *meteredStore) UpsertDevice(ctx context.Context, d *deploy.Device) error {
	return m.fail("UpsertDevice", m.Store.UpsertDevice(ctx, d))
}

func (m *meteredStore) Device(ctx context.Context, id string) (*deploy.Device, error) {
	r0, err := m.Store.Device(ctx, id)
	return r0, m.fail("Device", err)
}

func (m *meteredStore) Devices(ctx context.Context) ([]*deploy.Device, error) {
	r0, err := m.Store.Devices(ctx)
	return r0, m.fail("Devices", err)
}

func (m *meteredStore) CreateRun(ctx context.Context, r *deploy.Run) error {
	return m.fail("CreateRun", m.Store.CreateRun(ctx, r))
}

func (m *meteredStore) UpdateRun(ctx context.Context, r *deploy.Run) error {
	return m.fail("UpdateRun", m.Store.UpdateRun(ctx, r))
}

func (m *meteredStore) Run(ctx context.Context, id string) (*deploy.Run, error) {
	r0, err := m.Store.Run(ctx, id)
	return r0, m.fail("Run", err)
}

func (m *meteredStore) Runs(ctx context.Context, f deploy.RunFilter) ([]*deploy.Run, error) {
	r0, err := m.Store.Runs(ctx, f)
	return r0, m.fail("Runs", err)
}

func (m *meteredStore) BootState(ctx context.Context, deviceIDs ...string) (deploy.BootState, error) {
	r0, err := m.Store.BootState(ctx, deviceIDs...)
	return r0, m.fail("BootState", err)
}

func (m *meteredStore) SetNextBoot(ctx context.Context, id string, nb deploy.NextBoot) error {
	return m.fail("SetNextBoot", m.Store.SetNextBoot(ctx, id, nb))
}

func (m *meteredStore) NextBoots(ctx context.Context) (map[string]deploy.NextBoot, error) {
	r0, err := m.Store.NextBoots(ctx)
	return r0, m.fail("NextBoots", err)
}

func (m *meteredStore) AppendRunEvent(ctx context.Context, e *deploy.RunEvent) error {
	return m.fail("AppendRunEvent", m.Store.AppendRunEvent(ctx, e))
}

func (m *meteredStore) AppendRunEvents(ctx context.Context, r *deploy.Run, events []*deploy.RunEvent) error {
	return m.fail("AppendRunEvents", m.Store.AppendRunEvents(ctx, r, events))
}

func (m *meteredStore) RunEvents(ctx context.Context, runID string, afterSeq int64) ([]*deploy.RunEvent, error) {
	r0, err := m.Store.RunEvents(ctx, runID, afterSeq)
	return r0, m.fail("RunEvents", err)
}

func (m *meteredStore) MarkLostRuns(ctx context.Context, before time.Time) (int, error) {
	r0, err := m.Store.MarkLostRuns(ctx, before)
	return r0, m.fail("MarkLostRuns", err)
}

func (m *meteredStore) Setting(ctx context.Context, key string) ([]byte, error) {
	r0, err := m.Store.Setting(ctx, key)
	return r0, m.fail("Setting", err)
}

func (m *meteredStore) PutSetting(ctx context.Context, key string, value []byte) error {
	return m.fail("PutSetting", m.Store.PutSetting(ctx, key, value))
}

func (m *meteredStore) DeleteSetting(ctx context.Context, key string) error {
	return m.fail("DeleteSetting", m.Store.DeleteSetting(ctx, key))
}

func (m *meteredStore) UpdateSetting(ctx context.Context, key string, fn func(old []byte) ([]byte, error)) error {
	return m.fail("UpdateSetting", m.Store.UpdateSetting(ctx, key, fn))
}

func (m *meteredStore) CreateSession(ctx context.Context, s *deploy.Session) error {
	return m.fail("CreateSession", m.Store.CreateSession(ctx, s))
}

func (m *meteredStore) SessionByTokenHash(ctx context.Context, hash []byte) (*deploy.Session, error) {
	r0, err := m.Store.SessionByTokenHash(ctx, hash)
	return r0, m.fail("SessionByTokenHash", err)
}

func (m *meteredStore) UpdateSession(ctx context.Context, s *deploy.Session) error {
	return m.fail("UpdateSession", m.Store.UpdateSession(ctx, s))
}

func (m *meteredStore) Sessions(ctx context.Context) ([]*deploy.Session, error) {
	r0, err := m.Store.Sessions(ctx)
	return r0, m.fail("Sessions", err)
}

func (m *meteredStore) RevokeSessions(ctx context.Context, f deploy.SessionFilter, at time.Time) (int, error) {
	r0, err := m.Store.RevokeSessions(ctx, f, at)
	return r0, m.fail("RevokeSessions", err)
}

func (m *meteredStore) CreateUser(ctx context.Context, u *deploy.User) error {
	return m.fail("CreateUser", m.Store.CreateUser(ctx, u))
}

func (m *meteredStore) UpdateUser(ctx context.Context, u *deploy.User) error {
	return m.fail("UpdateUser", m.Store.UpdateUser(ctx, u))
}

func (m *meteredStore) User(ctx context.Context, name string) (*deploy.User, error) {
	r0, err := m.Store.User(ctx, name)
	return r0, m.fail("User", err)
}

func (m *meteredStore) Users(ctx context.Context) ([]*deploy.User, error) {
	r0, err := m.Store.Users(ctx)
	return r0, m.fail("Users", err)
}

func (m *meteredStore) DeleteUser(ctx context.Context, name string) error {
	return m.fail("DeleteUser", m.Store.DeleteUser(ctx, name))
}

func (m *meteredStore) AppendAudit(ctx context.Context, e *deploy.AuditEvent) error {
	return m.fail("AppendAudit", m.Store.AppendAudit(ctx, e))
}

func (m *meteredStore) AuditEvents(ctx context.Context, afterSeq int64, limit int) ([]*deploy.AuditEvent, error) {
	r0, err := m.Store.AuditEvents(ctx, afterSeq, limit)
	return r0, m.fail("AuditEvents", err)
}

func (m *meteredStore) TakeThrottle(ctx context.Context, now time.Time, window time.Duration, limits ...deploy.ThrottleLimit) (string, time.Duration, error) {
	r0, r1, err := m.Store.TakeThrottle(ctx, now, window, limits...)
	return r0, r1, m.fail("TakeThrottle", err)
}

func (m *meteredStore) ReleaseThrottle(ctx context.Context, id string, keys ...string) error {
	return m.fail("ReleaseThrottle", m.Store.ReleaseThrottle(ctx, id, keys...))
}

func (m *meteredStore) Close() error {
	return m.fail("Close", m.Store.Close())
}

func (m *meteredBlobs) Put(ctx context.Context, r io.Reader, opts content.PutOptions) (content.Blob, error) {
	r0, err := m.Blobs.Put(ctx, r, opts)
	return r0, m.fail("Put", err)
}

func (m *meteredBlobs) Stat(ctx context.Context, h string) (content.Blob, error) {
	r0, err := m.Blobs.Stat(ctx, h)
	return r0, m.fail("Stat", err)
}

func (m *meteredBlobs) Open(ctx context.Context, h string) (content.Object, error) {
	r0, err := m.Blobs.Open(ctx, h)
	return r0, m.fail("Open", err)
}

func (m *meteredBlobs) Remove(ctx context.Context, h string) error {
	return m.fail("Remove", m.Blobs.Remove(ctx, h))
}

func (m *meteredBlobs) Walk(ctx context.Context, fn func(content.BlobInfo) error) error {
	return m.fail("Walk", m.Blobs.Walk(ctx, fn))
}

func (m *meteredBlobs) Verify(ctx context.Context, h string) error {
	return m.fail("Verify", m.Blobs.Verify(ctx, h))
}

func (m *meteredBlobs) SetAside(ctx context.Context, h string) error {
	return m.fail("SetAside", m.Blobs.SetAside(ctx, h))
}

func (m *meteredBlobs) SetAsideBlob(ctx context.Context, h string) bool {
	return m.Blobs.SetAsideBlob(ctx, h)
}

func (m *meteredBlobs) Close() error {
	return m.fail("Close", m.Blobs.Close())
}
