-- The PostgreSQL form of the SQLite store's schema (internal/store/sqlite):
-- the same tables and columns, so both stores read alike. Documents are
-- kept as text, byte for byte what the store wrote (jsonb would reorder
-- keys). Times in columns are Unix microseconds (UTC); documents keep
-- RFC 3339.
CREATE TABLE content_items (
	id   text PRIMARY KEY,
	name text NOT NULL,
	doc  text NOT NULL
);
CREATE INDEX content_items_name ON content_items (name);

CREATE TABLE content_versions (
	item_id    text   NOT NULL REFERENCES content_items (id) ON DELETE CASCADE,
	version_no bigint NOT NULL,
	id         text   NOT NULL UNIQUE,
	doc        text   NOT NULL,
	PRIMARY KEY (item_id, version_no)
);

-- Every blob a version references: its File blob and each manifest file.
CREATE TABLE content_blobs (
	item_id    text   NOT NULL,
	version_no bigint NOT NULL,
	sha256     text   NOT NULL,
	PRIMARY KEY (item_id, version_no, sha256),
	FOREIGN KEY (item_id, version_no) REFERENCES content_versions (item_id, version_no) ON DELETE CASCADE
);
CREATE INDEX content_blobs_sha256 ON content_blobs (sha256);

CREATE TABLE step_definitions (
	id   text PRIMARY KEY,
	name text NOT NULL,
	doc  text NOT NULL
);

CREATE TABLE task_sequences (
	id   text PRIMARY KEY,
	name text NOT NULL,
	doc  text NOT NULL
);

CREATE TABLE devices (
	id  text PRIMARY KEY,
	doc text NOT NULL
);

CREATE TABLE runs (
	id               text   PRIMARY KEY,
	device_id        text   NOT NULL,
	task_sequence_id text   NOT NULL,
	state            text   NOT NULL,
	started_at       bigint NOT NULL,
	updated_at       bigint NOT NULL,
	doc              text   NOT NULL
);
CREATE INDEX runs_device ON runs (device_id, started_at);
CREATE INDEX runs_task_sequence ON runs (task_sequence_id, started_at);
CREATE INDEX runs_state ON runs (state, updated_at);
CREATE INDEX runs_started ON runs (started_at);

CREATE TABLE run_events (
	run_id text   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	seq    bigint NOT NULL,
	doc    text   NOT NULL,
	PRIMARY KEY (run_id, seq)
);

CREATE TABLE settings (
	key   text  PRIMARY KEY,
	value bytea NOT NULL
);

CREATE TABLE sessions (
	id         text   PRIMARY KEY,
	token_hash bytea  NOT NULL UNIQUE,
	method     text   NOT NULL,
	device_id  text   NOT NULL,
	generation bigint NOT NULL,
	created_at bigint NOT NULL,
	expires_at bigint NOT NULL,
	revoked_at bigint,
	doc        text   NOT NULL
);
CREATE INDEX sessions_device ON sessions (device_id);

-- The audit hash chain. Appends take a transaction-scoped advisory lock
-- (AppendAudit in auth.go), so that replicas never fork the chain; seq is
-- assigned by the store as the head's seq + 1.
CREATE TABLE audit (
	seq  bigint PRIMARY KEY,
	doc  text   NOT NULL,
	hash text   NOT NULL
);
