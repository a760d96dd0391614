-- Web-console accounts. The name is the key (compared as stored: the
-- caller lower-cases it); the password is an Argon2id PHC string.
CREATE TABLE users (
	name          text PRIMARY KEY,
	role          text NOT NULL,
	password_hash text NOT NULL,
	created_at    bigint NOT NULL,
	updated_at    bigint NOT NULL
);
