// The persisted ids of spec/domain.md §2, pinned: a renumbered module, det or emission type would
// silently re-point every stored row. tests/unit/fixtures/emission_types.csv is a copy of the spec's
// emission_types.csv.
import assert from "node:assert/strict";
import { parseCsv } from "../../src/imports/csv.ts";
import { EMISSION_TYPE_NODES } from "../../src/reference/emission_type_nodes.ts";
import { listDataEntryTypes, MODULE_TYPES } from "../../src/reference/enums.ts";

Deno.test("module types and data entry types keep the ids of spec/domain.md §2", () => {
  const modules = { ...MODULE_TYPES };
  assert.deepEqual(modules, {
    headcount: 1,
    professional_travel: 2,
    buildings: 3,
    equipment: 4,
    purchase: 5,
    research_facilities: 6,
    external_cloud_and_ai: 7,
    process_emissions: 8,
  });
  const dets = listDataEntryTypes().map((d) => [d.name, d.id, d.moduleName]);
  assert.deepEqual(dets, [
    ["member", 1, "headcount"],
    ["student", 2, "headcount"],
    ["scientific", 10, "equipment"],
    ["it", 11, "equipment"],
    ["other", 12, "equipment"],
    ["plane", 20, "professional_travel"],
    ["train", 21, "professional_travel"],
    ["building", 30, "buildings"],
    ["energy_combustion", 31, "buildings"],
    ["building_embodied_energy", 32, "buildings"],
    ["external_clouds", 40, "external_cloud_and_ai"],
    ["external_ai", 41, "external_cloud_and_ai"],
    ["process_emissions", 50, "process_emissions"],
    ["scientific_equipment", 60, "purchase"],
    ["it_equipment", 61, "purchase"],
    ["consumable_accessories", 62, "purchase"],
    ["biological_chemical_gaseous_product", 63, "purchase"],
    ["services", 64, "purchase"],
    ["vehicles", 65, "purchase"],
    ["other_purchases", 66, "purchase"],
    ["additional_purchases", 67, "purchase"],
  ]);
});

Deno.test("the emission type tree is spec/emission_types.csv node for node", async () => {
  const file = new URL("./fixtures/emission_types.csv", import.meta.url);
  const spec = parseCsv("emission_types.csv", await Deno.readTextFile(file)).rows.map((r) => ({
    id: Number(r.cells.id),
    name: r.cells.name,
    parentId: r.cells.parent_id === "" ? null : Number(r.cells.parent_id),
    scope: r.cells.scope === "" ? null : Number(r.cells.scope),
    category: r.cells.category === "" ? null : r.cells.category,
  }));
  assert.equal(spec.length, 115);
  const code = EMISSION_TYPE_NODES.map((n) => ({ ...n }));
  const byId = (a: { id: number }, b: { id: number }) => a.id - b.id;
  assert.deepEqual([...code].sort(byId), [...spec].sort(byId));
});
