-- An emission row names the import that set its factor's values (meta.factors_used[].import_id):
-- a slice state records each factor's import too, so that an import that puts back values the
-- state already holds still leaves the slice stale (its rows name the earlier import).
ALTER TABLE slice_state_factors ADD COLUMN import_id bigint;

-- A state recorded before took each factor as it was then: the import it had is the one the first
-- version written since says it had before, else the one it has now. An import rematched in its
-- own transaction (--rematch) recorded itself after that transaction began, and is not "since".
UPDATE slice_state_factors s
SET import_id = CASE WHEN since.found THEN since.import_id_before ELSE f.import_id END
FROM slice_states st
  JOIN factors f ON true
  LEFT JOIN LATERAL (
    SELECT true AS found, v.import_id_before
    FROM factor_versions v JOIN factor_imports i ON i.id = v.import_id
    WHERE v.factor_id = f.id AND i.created_at > st.rematched_at
      AND NOT EXISTS (
        SELECT 1 FROM rematch_runs r
        WHERE r.import_id = i.id AND r.data_entry_type_id = st.data_entry_type_id
          AND r.year = st.year)
    ORDER BY v.id
    LIMIT 1
  ) since ON true
WHERE f.id = s.factor_id AND st.data_entry_type_id = s.data_entry_type_id AND st.year = s.year;

-- Where a recorded import is not the live one, the factors must be compared again: a state whose
-- stamp is the live one skips them.
UPDATE slice_states st SET factor_stamp = NULL
WHERE EXISTS (
  SELECT 1 FROM slice_state_factors s JOIN factors f ON f.id = s.factor_id
  WHERE s.data_entry_type_id = st.data_entry_type_id AND s.year = st.year
    AND s.import_id IS DISTINCT FROM f.import_id);
