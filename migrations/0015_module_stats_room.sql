-- Room for module stats to be rewritten in place (spec/performance.md).
--
-- Every rematch that changes emissions, and every entry write, moves the stats of the modules it
-- touched: one UPDATE of their `stats` and `stats_computed_at`, no indexed column among them. On
-- full pages each new row version went to another page, with a new entry in every index (a
-- rematch's 2,000 module rows took 17 to 18 ms that way, 9 to 10 ms rewritten on their own pages).
-- Half of each page is left free when rows are written, so that a page's rows can all be rewritten
-- in place (HOT). Existing pages get the room as their rows move (or at once with VACUUM FULL
-- carbon_report_modules).
ALTER TABLE carbon_report_modules SET (fillfactor = 50);
