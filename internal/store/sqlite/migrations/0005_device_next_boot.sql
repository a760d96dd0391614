-- The operators' next-boot choices, one row per device (SetNextBoot),
-- so that the boot script reads a machine's choice by key together with
-- its newest run (BootState) instead of every device's choices at once.
-- Absent means auto. They were the setting "device.nextboot", a JSON
-- object of device ID -> "deploy" or "local": its entries move here and
-- the setting goes. An unreadable value meant no choice, and moves
-- nothing.
CREATE TABLE device_next_boot (
	device_id TEXT PRIMARY KEY,
	next_boot TEXT NOT NULL
) WITHOUT ROWID;

INSERT OR IGNORE INTO device_next_boot (device_id, next_boot)
SELECT lower(e.key), e.value
FROM settings AS s,
	json_each(CASE WHEN json_valid(CAST(s.value AS TEXT)) AND json_type(CAST(s.value AS TEXT)) = 'object'
		THEN CAST(s.value AS TEXT) ELSE '{}' END) AS e
WHERE s.key = 'device.nextboot' AND e.type = 'text' AND e.value IN ('deploy', 'local');

DELETE FROM settings WHERE key = 'device.nextboot';
