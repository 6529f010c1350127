-- Targeted rematches find the JSON-link entries naming a changed factor in an index alone
-- (spec/performance.md, "one-percent change").
--
-- The expression index of 0005 found those entries, but PostgreSQL answers a query from an index
-- alone only when every column the query uses is in it, and `data` (which the expression reads)
-- is not: each entry found cost a random heap read for its id. At 1,000,000 `it` entries, the
-- 10,000 entries of one factor took 45 to 65 ms of the 0.5 s rematch. The link as a stored
-- column, indexed with the entry id, is listed by an index-only scan once the table is vacuumed.
--
-- numeric, not bigint: a JSON number that is no integer (a hand edit) must not fail the write of
-- the entry; it is compared as jsonb compared numbers before.
ALTER TABLE data_entries ADD COLUMN json_link_factor_id numeric
  GENERATED ALWAYS AS (
    CASE WHEN jsonb_typeof(data -> 'primary_factor_id') = 'number'
      THEN (data ->> 'primary_factor_id')::numeric END
  ) STORED;

DROP INDEX data_entries_json_link_idx;
CREATE INDEX data_entries_json_link_idx
  ON data_entries (data_entry_type_id, json_link_factor_id) INCLUDE (id)
  WHERE json_link_factor_id IS NOT NULL;
