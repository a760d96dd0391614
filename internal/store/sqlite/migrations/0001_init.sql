-- Content items hold their metadata as JSON (without versions); each version
-- is its own row and JSON document.
CREATE TABLE content_items (
	id   TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	doc  TEXT NOT NULL
);
CREATE INDEX content_items_name ON content_items (name);

CREATE TABLE content_versions (
	item_id    TEXT    NOT NULL REFERENCES content_items (id) ON DELETE CASCADE,
	version_no INTEGER NOT NULL,
	id         TEXT    NOT NULL UNIQUE,
	doc        TEXT    NOT NULL,
	PRIMARY KEY (item_id, version_no)
);

-- Every blob a version references: its File blob and each manifest file.
CREATE TABLE content_blobs (
	item_id    TEXT    NOT NULL,
	version_no INTEGER NOT NULL,
	sha256     TEXT    NOT NULL,
	PRIMARY KEY (item_id, version_no, sha256),
	FOREIGN KEY (item_id, version_no) REFERENCES content_versions (item_id, version_no) ON DELETE CASCADE
);
CREATE INDEX content_blobs_sha256 ON content_blobs (sha256);

CREATE TABLE step_definitions (
	id   TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	doc  TEXT NOT NULL
);

CREATE TABLE task_sequences (
	id   TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	doc  TEXT NOT NULL
);

CREATE TABLE devices (
	id  TEXT PRIMARY KEY,
	doc TEXT NOT NULL
);

-- Times in columns are Unix microseconds (UTC); documents keep RFC 3339.
CREATE TABLE runs (
	id               TEXT    PRIMARY KEY,
	device_id        TEXT    NOT NULL,
	task_sequence_id TEXT    NOT NULL,
	state            TEXT    NOT NULL,
	started_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL,
	doc              TEXT    NOT NULL
);
CREATE INDEX runs_device ON runs (device_id, started_at);
CREATE INDEX runs_task_sequence ON runs (task_sequence_id, started_at);
CREATE INDEX runs_state ON runs (state, updated_at);
CREATE INDEX runs_started ON runs (started_at);

CREATE TABLE run_events (
	run_id TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	seq    INTEGER NOT NULL,
	doc    TEXT    NOT NULL,
	PRIMARY KEY (run_id, seq)
);

CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
);

CREATE TABLE sessions (
	id         TEXT    PRIMARY KEY,
	token_hash BLOB    NOT NULL UNIQUE,
	method     TEXT    NOT NULL,
	device_id  TEXT    NOT NULL,
	generation INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	revoked_at INTEGER,
	doc        TEXT    NOT NULL
);
CREATE INDEX sessions_device ON sessions (device_id);

CREATE TABLE audit (
	seq  INTEGER PRIMARY KEY AUTOINCREMENT,
	doc  TEXT NOT NULL,
	hash TEXT NOT NULL
);
