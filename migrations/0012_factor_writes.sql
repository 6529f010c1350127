-- Cheaper factor imports (spec/performance.md, "factor CSV of 50,000 rows").
--
-- Every inserted factor paid two foreign-key checks, a lookup and a row lock each, against
-- tables that only mirror the code's own tables (src/reference/), rewritten from the code at
-- every startup and never edited: the data entry type and the emission type of the factor. As for
-- entries and emission rows (migration 0008), the code is what guarantees those ids: a factor's
-- det is the import's target, looked up in the code's table before anything is read, and its
-- emission type is the one the det's handler gives its classification (a row whose
-- classification has none is refused, naming its line). Measured on a fresh import of 50,000
-- factors: the statement that inserts them and their versions took 0.88 s without these checks
-- against 1.17 s with them.
ALTER TABLE factors DROP CONSTRAINT factors_data_entry_type_id_fkey;
ALTER TABLE factors DROP CONSTRAINT factors_emission_type_id_fkey;
