-- The slice's total kg CO2-eq (rollup rows excluded) as its last whole-slice rematch left it,
-- moved since by the entries written and deleted through the project (spec/rematch.md §1: a
-- result's kgBefore and kgAfter are slice totals). A targeted rematch reads only some entries and a
-- current slice none: they report this total, moved by what they changed, instead of summing every
-- row of the slice. NULL when unknown (a state recorded before this migration, or a rematch of some
-- of the slice's modules since): the next rematch that needs it sums the slice.
ALTER TABLE slice_states ADD COLUMN kg_total double precision;
