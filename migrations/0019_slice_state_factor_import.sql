-- An emission row names the import that set its factor's values (meta.factors_used[].import_id):
-- a slice state records each factor's import too, so that an import that puts back values the
-- state already holds still leaves the slice stale (its rows name the earlier import). States
-- recorded before take the import their factor has now, as the rows they were written with did,
-- unless an import since put its values back.
ALTER TABLE slice_state_factors ADD COLUMN import_id bigint;
UPDATE slice_state_factors s SET import_id = f.import_id FROM factors f WHERE f.id = s.factor_id;
