-- Web-console accounts. The name is the key (compared as stored: the
-- caller lower-cases it); the password is an Argon2id PHC string.
CREATE TABLE users (
	name          TEXT PRIMARY KEY,
	role          TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
);
