-- A pipeline's status follows its jobs (and the jobs it waits for, pipeline_links). A module recalc
-- of a module without data entry types made pipelines of no job before it was refused (409), and
-- nothing could end them: they stayed RUNNING for good. They end FAILED here. Pipelines are made
-- with their jobs in one transaction, so no other RUNNING pipeline is without one.
UPDATE pipelines p
SET status = 'FAILED',
  meta = coalesce(p.meta, '{}'::jsonb) || '{"ended": "no job: ended by migration 0017"}'::jsonb,
  updated_at = now()
WHERE p.status = 'RUNNING'
  AND NOT EXISTS (SELECT 1 FROM data_ingestion_jobs j WHERE j.pipeline_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM pipeline_links l WHERE l.pipeline_id = p.id);
