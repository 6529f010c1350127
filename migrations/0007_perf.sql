-- Room for the rematch to rewrite emission rows in place (spec/performance.md).
--
-- A rematch after a factor change rewrites most rows of a slice. An UPDATE whose new row version
-- fits on the same page, and which leaves every indexed column as it was, is HOT: no index gets a
-- new entry, and the old version is pruned from the page later. Half of each page is left free
-- when rows are written, so that a whole page of rows can be rewritten in place. Existing pages
-- get the room as their rows move (or at once with VACUUM FULL data_entry_emissions).
ALTER TABLE data_entry_emissions SET (fillfactor = 50);
