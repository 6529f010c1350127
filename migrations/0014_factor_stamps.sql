-- A stamp per slice that moves with every write to its factors (spec/performance.md, "no-op";
-- spec/rematch.md rule 16).
--
-- Every rematch, a no-op included, compared the slice's live factors with the snapshot its state
-- recorded, row by row. With the bench's 100 `it` factors that cost nothing; with 50,100 factors the
-- no-op rematch of 10,000 entries took 116 to 168 ms. Statement triggers on `factors` now move the
-- stamp of every (det, year) a statement wrote, hand SQL and TRUNCATE included; a slice state
-- records the stamp it read before its factors, and while the live stamp is the recorded one the
-- comparison skips the factors. Factors without a year belong to no slice (a slice reads its
-- year's) and move no stamp. A moved stamp only sends the comparison back to the row-by-row diff,
-- which says what changed (nothing, for an import of identical values).
CREATE TABLE slice_factor_stamps (
  data_entry_type_id integer NOT NULL,
  year integer NOT NULL,
  stamp bigint NOT NULL,
  PRIMARY KEY (data_entry_type_id, year)
);

-- States recorded before this migration have none: their next comparison diffs the factors.
ALTER TABLE slice_states ADD COLUMN factor_stamp bigint;

CREATE FUNCTION rematch_factors_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO slice_factor_stamps AS s (data_entry_type_id, year, stamp)
  SELECT DISTINCT data_entry_type_id, year, 1 FROM new_factors WHERE year IS NOT NULL
  ON CONFLICT (data_entry_type_id, year) DO UPDATE SET stamp = s.stamp + 1;
  RETURN NULL;
END $$;

CREATE FUNCTION rematch_factors_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO slice_factor_stamps AS s (data_entry_type_id, year, stamp)
  SELECT data_entry_type_id, year, 1 FROM new_factors WHERE year IS NOT NULL
  UNION SELECT data_entry_type_id, year, 1 FROM old_factors WHERE year IS NOT NULL
  ON CONFLICT (data_entry_type_id, year) DO UPDATE SET stamp = s.stamp + 1;
  RETURN NULL;
END $$;

CREATE FUNCTION rematch_factors_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO slice_factor_stamps AS s (data_entry_type_id, year, stamp)
  SELECT DISTINCT data_entry_type_id, year, 1 FROM old_factors WHERE year IS NOT NULL
  ON CONFLICT (data_entry_type_id, year) DO UPDATE SET stamp = s.stamp + 1;
  RETURN NULL;
END $$;

-- Every slice that had factors has a stamp (its first insert made it): all of them move.
CREATE FUNCTION rematch_factors_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE slice_factor_stamps SET stamp = stamp + 1;
  RETURN NULL;
END $$;

CREATE TRIGGER factors_stamp_insert AFTER INSERT ON factors
  REFERENCING NEW TABLE AS new_factors
  FOR EACH STATEMENT EXECUTE FUNCTION rematch_factors_inserted();
CREATE TRIGGER factors_stamp_update AFTER UPDATE ON factors
  REFERENCING OLD TABLE AS old_factors NEW TABLE AS new_factors
  FOR EACH STATEMENT EXECUTE FUNCTION rematch_factors_updated();
CREATE TRIGGER factors_stamp_delete AFTER DELETE ON factors
  REFERENCING OLD TABLE AS old_factors
  FOR EACH STATEMENT EXECUTE FUNCTION rematch_factors_deleted();
CREATE TRIGGER factors_stamp_truncate AFTER TRUNCATE ON factors
  FOR EACH STATEMENT EXECUTE FUNCTION rematch_factors_truncated();

-- The slices already there.
INSERT INTO slice_factor_stamps (data_entry_type_id, year, stamp)
SELECT DISTINCT data_entry_type_id, year, 1 FROM factors WHERE year IS NOT NULL;
