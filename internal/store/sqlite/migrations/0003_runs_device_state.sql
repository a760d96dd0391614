-- The boot script asks for the state of a machine's newest run on every
-- network boot (LastRunState): this index answers it without reading the
-- run documents, in the order Runs uses.
CREATE INDEX runs_device_state ON runs (device_id, started_at DESC, id, state);
DROP INDEX runs_device;
