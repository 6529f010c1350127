-- Slices that know they are current (spec/rematch.md rules 16-18): what the last rematch of each
-- (det, year) slice computed against, and the entries the next rematch must read again.

-- One row per slice, written by every successful rematch of the whole slice, in its transaction.
CREATE TABLE slice_states (
  data_entry_type_id integer NOT NULL REFERENCES data_entry_types (id),
  year integer NOT NULL,
  -- The compute code's revision: results of another revision are not trusted.
  compute_revision integer NOT NULL,
  -- md5 per reference kind the handler reads ({"locations": "..."}; rates: the slice year only).
  reference_digests jsonb NOT NULL,
  rematched_at timestamptz NOT NULL DEFAULT now(),
  -- 'targeted' or 'full': how that run read the slice.
  scope text NOT NULL CHECK (scope IN ('targeted', 'full')),
  -- The run's counts (entries, recalculated, errors, kg, ...).
  summary jsonb NOT NULL,
  PRIMARY KEY (data_entry_type_id, year)
);

-- The factors of the slice exactly as that rematch read them: compared with the live rows, they
-- tell a current slice from one whose factors changed, and which factors changed how.
CREATE TABLE slice_state_factors (
  data_entry_type_id integer NOT NULL,
  year integer NOT NULL,
  factor_id bigint NOT NULL,
  emission_type_id integer NOT NULL,
  classification jsonb NOT NULL,
  "values" jsonb NOT NULL,
  PRIMARY KEY (data_entry_type_id, year, factor_id),
  FOREIGN KEY (data_entry_type_id, year) REFERENCES slice_states ON DELETE CASCADE
);

-- Entries whose stored rows the slice state does not vouch for: their compute failed ('failed',
-- with the error), or they were written while the slice was stale ('written') or recomputed by a
-- module-restricted rematch of a stale slice ('rematched'). A slice with any is not current; the
-- next rematch reads them whatever else changed. Their data and rows are left as they were.
CREATE TABLE data_entry_pending (
  data_entry_id bigint PRIMARY KEY REFERENCES data_entries (id) ON DELETE CASCADE,
  reason text NOT NULL CHECK (reason IN ('failed', 'written', 'rematched')),
  error text,
  noted_at timestamptz NOT NULL DEFAULT now()
);

-- A targeted rematch reads the JSON-link entries naming a changed factor.
CREATE INDEX data_entries_json_link_idx
  ON data_entries (data_entry_type_id, (data -> 'primary_factor_id'))
  WHERE jsonb_typeof(data -> 'primary_factor_id') = 'number';

-- Module stats are refreshed for the few modules a targeted rematch touched: their entries are
-- found by module (no other index leads with it).
CREATE INDEX data_entries_module_idx ON data_entries (carbon_report_module_id, id);
