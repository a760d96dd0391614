-- The login throttle's hits (TakeThrottle), shared by every replica: one
-- row per counted guess and key, kept for the rolling window. Takes hold
-- an advisory lock per key (sqlstore.LockThrottle). at is Unix
-- microseconds.
CREATE TABLE throttle_hits (
	key text   NOT NULL,
	id  text   NOT NULL,
	at  bigint NOT NULL,
	PRIMARY KEY (key, id)
);
CREATE INDEX throttle_hits_at ON throttle_hits (key, at);
