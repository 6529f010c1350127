-- A factor's `last_seen_job_id` names the ingest job that last saw it in a file
-- (spec/factors-csv.md §2). A deleted factor's version keeps it, so that a rollback that brings
-- the factor back under its old id brings that back too. Versions recorded before this migration
-- have none: such a factor comes back without it, as before.
ALTER TABLE factor_versions ADD COLUMN last_seen_job_id_before bigint;
