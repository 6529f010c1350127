-- Entries: an idempotency key for imports, and member ids unique per module (spec/modules.md).

-- An imported entry may carry the key of its source line (`source_key` or `id`): importing a line
-- whose key already names an entry of the same module updates that entry instead of adding one.
ALTER TABLE data_entries ADD COLUMN source_key text;
CREATE UNIQUE INDEX data_entries_module_source_key_key
  ON data_entries (carbon_report_module_id, source_key) WHERE source_key IS NOT NULL;

-- A member's user_institutional_id is unique within its module. Duplicates already stored are not
-- resolved here (which of two members is the real one is the operator's call): the migration
-- stops, lists them, and nothing of it is applied until they are fixed.
DO $$
DECLARE
  groups integer;
  listing text;
BEGIN
  CREATE TEMPORARY TABLE member_id_duplicates ON COMMIT DROP AS
    SELECT e.carbon_report_module_id AS module_id, u.code AS unit, r.year,
      e.data->>'user_institutional_id' AS uid, array_agg(e.id ORDER BY e.id) AS ids
    FROM data_entries e
      JOIN carbon_report_modules m ON m.id = e.carbon_report_module_id
      JOIN carbon_reports r ON r.id = m.carbon_report_id
      JOIN units u ON u.id = r.unit_id
    WHERE e.data_entry_type_id = 1 AND e.data->>'user_institutional_id' <> ''
    GROUP BY 1, 2, 3, 4
    HAVING count(*) > 1;
  SELECT count(*) INTO groups FROM member_id_duplicates;
  IF groups > 0 THEN
    -- The first 50 are listed: enough to see the pattern without flooding the terminal.
    SELECT string_agg(format('  module %s (unit %s, year %s): user_institutional_id %s in entries %s',
        d.module_id, d.unit, d.year, to_json(d.uid), array_to_string(d.ids, ', ')), E'\n')
    INTO listing
    FROM (SELECT * FROM member_id_duplicates ORDER BY module_id, uid LIMIT 50) d;
    IF groups > 50 THEN
      listing := listing || format(E'\n  ... and %s more', groups - 50);
    END IF;
    RAISE EXCEPTION USING MESSAGE = format(
      E'migration 0003 stopped: %s member user_institutional_id value(s) are used more than once in one module; they must be unique per module (spec/modules.md):\n%s\nKeep one member entry per id (delete the others or give them their own id), then run migrate again. Nothing was changed.',
      groups, listing);
  END IF;
  DROP TABLE member_id_duplicates;
END $$;

CREATE UNIQUE INDEX data_entries_member_user_institutional_id_key
  ON data_entries (carbon_report_module_id, (data->>'user_institutional_id'))
  WHERE data_entry_type_id = 1 AND data->>'user_institutional_id' <> '';
