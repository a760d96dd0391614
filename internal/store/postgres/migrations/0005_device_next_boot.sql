-- The operators' next-boot choices, one row per device (SetNextBoot),
-- so that the boot script reads a machine's choice by key together with
-- its newest run (BootState) instead of every device's choices at once.
-- Absent means auto. They were the setting "device.nextboot", a JSON
-- object of device ID -> "deploy" or "local": its entries move here and
-- the setting goes. An unreadable value meant no choice, and moves
-- nothing.
CREATE TABLE device_next_boot (
	device_id text PRIMARY KEY,
	next_boot text NOT NULL
);

DO $$
BEGIN
	INSERT INTO device_next_boot (device_id, next_boot)
	SELECT lower(e.key), e.value
	FROM settings AS s, jsonb_each_text(convert_from(s.value, 'UTF8')::jsonb) AS e
	WHERE s.key = 'device.nextboot' AND e.value IN ('deploy', 'local')
	ON CONFLICT (device_id) DO NOTHING;
EXCEPTION WHEN others THEN
	NULL; -- not UTF-8, not JSON or not an object: no choice to keep
END
$$;

DELETE FROM settings WHERE key = 'device.nextboot';
