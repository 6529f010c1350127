-- Cheaper entry writes (spec/performance.md, "entries import / seed").
--
-- Every inserted entry and emission row paid one foreign-key check per reference: a lookup and a
-- row lock each, about half of what a bulk insert costs the server. Two of them point at tables
-- that only mirror the code's own tables (src/reference/), rewritten from the code at every
-- startup and never edited: the data entry type of an entry and the emission type of a row. The
-- code is what guarantees those ids: an entry's det is looked up in the code's table before
-- anything is written (an unknown det is refused, naming it), and an emission row whose type the
-- code's tree does not know is refused before the insert. The foreign keys that protect data
-- users change (modules, entries, factors) stay.
ALTER TABLE data_entries DROP CONSTRAINT data_entries_data_entry_type_id_fkey;
ALTER TABLE data_entry_emissions DROP CONSTRAINT data_entry_emissions_emission_type_id_fkey;
