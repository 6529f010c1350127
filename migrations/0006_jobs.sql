-- What the job runner and the HTTP API of spec/interfaces.md §3-§4 need beyond 0002_jobs.sql:
-- reference imports as jobs, aborts, worker registry, jobs a pipeline waits for in another
-- pipeline (deduplicated recalcs), uploaded files kept in the database (so workers on any host
-- can read them), the indexes of the claim, sweep and listings, and the wake-up notification.

ALTER TABLE data_ingestion_jobs DROP CONSTRAINT data_ingestion_jobs_job_type_check;
ALTER TABLE data_ingestion_jobs ADD CONSTRAINT data_ingestion_jobs_job_type_check
  CHECK (job_type IN ('factor_ingest', 'entries_ingest', 'reference_ingest', 'emission_recalc'));
-- A finished job has a result; a job that has not finished has none.
ALTER TABLE data_ingestion_jobs ADD CONSTRAINT data_ingestion_jobs_result_when_finished
  CHECK ((state = 'FINISHED') = (result IS NOT NULL));
ALTER TABLE data_ingestion_jobs ADD CONSTRAINT data_ingestion_jobs_attempts_check
  CHECK (attempts >= 0 AND max_attempts >= 1);

-- Who asked (the API token's name, or the CLI's actor) and when the pipeline was aborted.
ALTER TABLE pipelines ADD COLUMN actor text;
ALTER TABLE pipelines ADD COLUMN aborted_at timestamptz;
CREATE INDEX pipelines_created_idx ON pipelines (created_at DESC, id DESC);

-- A pipeline also waits for these jobs of other pipelines: a recalc it would have created was
-- already waiting for the same slice (the partial unique index of 0002), so it shares that one.
CREATE TABLE pipeline_links (
  pipeline_id uuid NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
  job_id bigint NOT NULL REFERENCES data_ingestion_jobs (id) ON DELETE CASCADE,
  PRIMARY KEY (pipeline_id, job_id)
);
CREATE INDEX pipeline_links_job_idx ON pipeline_links (job_id);

-- Live workers: each refreshes last_seen_at while it runs and removes its row when it stops.
CREATE TABLE workers (
  id text PRIMARY KEY,
  hostname text NOT NULL,
  pid integer NOT NULL,
  version text NOT NULL,
  concurrency integer NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now()
);

-- Uploaded files (POST /v1/files/temp-upload, multipart dispatch), in chunks of at most 1 MiB.
CREATE TABLE uploads (
  id uuid PRIMARY KEY,
  file_name text NOT NULL,
  size_bytes bigint NOT NULL,
  sha256 text NOT NULL,
  actor text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE upload_chunks (
  upload_id uuid NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
  seq integer NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY (upload_id, seq)
);

-- The sweep reads running jobs by age; the worker list reads them by worker.
CREATE INDEX data_ingestion_jobs_running_idx ON data_ingestion_jobs (locked_at)
  WHERE state = 'RUNNING';
CREATE INDEX data_ingestion_jobs_locked_by_idx ON data_ingestion_jobs (locked_by)
  WHERE state = 'RUNNING';
CREATE INDEX data_ingestion_jobs_created_idx ON data_ingestion_jobs (created_at);

-- Workers LISTEN on rematch_jobs: a job that becomes claimable wakes them at once (one
-- notification per transaction: PostgreSQL folds identical ones). They also poll.
CREATE FUNCTION rematch_notify_job_waiting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('rematch_jobs', '');
  RETURN NULL;
END
$$;
CREATE TRIGGER data_ingestion_jobs_notify_waiting
  AFTER INSERT OR UPDATE OF state ON data_ingestion_jobs
  FOR EACH ROW WHEN (NEW.state = 'NOT_STARTED')
  EXECUTE FUNCTION rematch_notify_job_waiting();
