-- The login throttle's hits (TakeThrottle): one row per counted guess and
-- key, kept for the rolling window. at is Unix microseconds.
CREATE TABLE throttle_hits (
	key TEXT    NOT NULL,
	id  TEXT    NOT NULL,
	at  INTEGER NOT NULL,
	PRIMARY KEY (key, id)
);
CREATE INDEX throttle_hits_at ON throttle_hits (key, at);
