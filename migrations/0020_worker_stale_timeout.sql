-- Each worker's own stale timeout (at least twice its heartbeat): a sweep run by another process,
-- whose own timeout may be shorter, leaves that worker's running jobs and its registry row alone
-- until this much silence has passed as well. Null for a worker of an earlier version.
ALTER TABLE workers ADD COLUMN stale_timeout_ms integer;
