-- Targeted rematches find the entries of changed factors in the factor index alone
-- (spec/performance.md, "one-percent change").
--
-- A targeted rematch first lists the entries whose emission rows name a changed factor. Through
-- an index on the factor id alone, each of those rows is a heap fetch for its entry id: at
-- 1,000,000 entries, one factor's 10,000 rows took 0.12 s of random page reads. With the entry id
-- carried in the index, the list is an index-only scan once the table is vacuumed (1 ms). The
-- index still serves the foreign key's `ON DELETE SET NULL` lookups by factor id.
DROP INDEX data_entry_emissions_factor_idx;
CREATE INDEX data_entry_emissions_factor_idx ON data_entry_emissions (primary_factor_id)
  INCLUDE (data_entry_id);
