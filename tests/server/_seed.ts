// Seeding for the job tests without going through HTTP: plane and it slices, factor files
// queued as factor_ingest jobs the way a dispatch queues them.
import { join } from "node:path";
import type { Database } from "../../src/db/connection.ts";
import { holdInTransaction } from "../_harness.ts";
import { createEntries, type NewEntry } from "../../src/db/entries.ts";
import { importFactors } from "../../src/db/factors.ts";
import { lockSlice } from "../../src/db/locks.ts";
import { importReferenceFile } from "../../src/db/reference.ts";
import { parseCsv } from "../../src/imports/csv.ts";
import { createPipeline } from "../../src/jobs/queue.ts";
import { storeUpload } from "../../src/jobs/uploads.ts";
import { getDataEntryType } from "../../src/reference/enums.ts";

const LOCATIONS = join(
  import.meta.dirname!,
  "..",
  "..",
  "fixtures",
  "matrix",
  "professional_travel__plane",
  "locations.csv",
);

/** Plane factors: economy and business, very short haul. */
export function planeFactors(economy: number, business: number): string {
  return `category,cabin_class,ef_kg_co2eq_per_km,rfi_adjustment,min_distance,max_distance
very_short_haul,economy,${economy},1,0,800
very_short_haul,business,${business},1,0,800
`;
}

/** it factors: one laptop class. */
export function itFactors(ef: number): string {
  return `equipment_class,sub_class,active_power_w,standby_power_w,active_usage_hours_per_week,standby_usage_hours_per_week,ef_kg_co2eq_per_kwh
Laptop,Standard,100,10,40,128,${ef}
`;
}

/** Imports factors directly (no job), in one transaction. */
export async function importFactorText(
  db: Database,
  det: "plane" | "it",
  year: number,
  text: string,
  mode: "merge" | "replace" = "merge",
): Promise<void> {
  const table = parseCsv(`${det}.csv`, text);
  await db.sql.begin((tx) =>
    importFactors(tx, {
      file: `${det}.csv`,
      table,
      year,
      target: { dataEntryTypeId: getDataEntryType(det).id },
      mode,
    })
  );
}

/** Airports, then `count` entries of the det for the year (half economy, half business). */
export async function seedEntries(
  db: Database,
  det: "plane" | "it",
  year: number,
  count: number,
): Promise<void> {
  await importReferenceFile(db, "locations", LOCATIONS);
  const type = getDataEntryType(det);
  const entries: NewEntry[] = Array.from({ length: count }, (_, i) => ({
    unitCode: `U${i % 20}`,
    year,
    det: type,
    data: det === "plane"
      ? {
        origin_iata: "GVA",
        destination_iata: i % 3 === 0 ? "LHR" : "CDG",
        cabin_class: i % 2 === 0 ? "economy" : "business",
        number_of_trips: 1 + (i % 4),
      }
      : {
        name: `laptop ${i}`,
        equipment_class: "Laptop",
        sub_class: "Standard",
        active_usage_hours_per_week: 40,
        standby_usage_hours_per_week: 128,
      },
  }));
  for (let at = 0; at < entries.length; at += 2000) {
    await db.sql.begin((tx) => createEntries(tx, entries.slice(at, at + 2000)));
  }
}

/** Queues a factor file as a factor_ingest job of its own pipeline, as a dispatch does. */
export async function queueFactorUpload(
  db: Database,
  det: "plane" | "it",
  year: number,
  text: string,
  name: string,
): Promise<{ pipelineId: string; jobId: number }> {
  const dir = await Deno.makeTempDir();
  const path = join(dir, name);
  await Deno.writeTextFile(path, text);
  const upload = await storeUpload(db.sql, { path, fileName: name, actor: "test" });
  await Deno.remove(dir, { recursive: true });
  const type = getDataEntryType(det);
  const created = await db.sql.begin((tx) =>
    createPipeline(tx, { kind: "factor_upload", actor: "test" }, [{
      jobType: "factor_ingest",
      moduleTypeId: type.moduleTypeId,
      dataEntryTypeId: type.id,
      year,
      input: {
        upload_id: upload.id,
        file_name: name,
        year,
        module_type_id: type.moduleTypeId,
        data_entry_type_id: type.id,
        mode: "merge",
        strict: false,
        allow_empty: false,
        force: false,
      },
    }])
  );
  return { pipelineId: created.pipelineId, jobId: created.jobs[0].jobId };
}

/** Queues a recalc of one slice in a pipeline of its own. */
export async function queueRecalc(
  db: Database,
  det: "plane" | "it",
  year: number,
): Promise<{ pipelineId: string; jobId: number }> {
  const type = getDataEntryType(det);
  const created = await db.sql.begin((tx) =>
    createPipeline(tx, { kind: "recalculation", actor: "test" }, [{
      jobType: "emission_recalc",
      moduleTypeId: type.moduleTypeId,
      dataEntryTypeId: type.id,
      year,
      input: { data_entry_type_id: type.id, year, full: false },
    }])
  );
  return { pipelineId: created.pipelineId, jobId: created.jobs[0].jobId };
}

/** Emission rows of a slice by id: `id → kg`. */
export async function emissionKg(
  db: Database,
  det: "plane" | "it",
  year: number,
): Promise<Map<number, number>> {
  const rows = await db.sql<{ id: number; kg: number }[]>`
    select x.id, x.kg_co2eq as kg from data_entry_emissions x
      join data_entries e on e.id = x.data_entry_id
      join carbon_report_modules m on m.id = e.carbon_report_module_id
      join carbon_reports r on r.id = m.carbon_report_id
    where e.data_entry_type_id = ${getDataEntryType(det).id} and r.year = ${year}
    order by x.id`;
  return new Map(rows.map((r) => [r.id, r.kg]));
}

/** Waits until every pipeline has ended; returns their statuses by id. */
export async function waitForPipelines(
  db: Database,
  ids: readonly string[],
  timeoutMs = 60_000,
): Promise<Map<string, string>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await db.sql<{ id: string; status: string }[]>`
      select id, status from pipelines where id = any(${[...ids]}::uuid[])`;
    if (rows.length === ids.length && rows.every((r) => r.status !== "RUNNING")) {
      return new Map(rows.map((r) => [r.id, r.status]));
    }
    if (Date.now() > deadline) {
      const running = rows.filter((r) => r.status === "RUNNING").map((r) => r.id);
      throw new Error(
        `${running.length} of ${ids.length} pipelines still running: ${running.join(", ")}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Holds a row lock on the emission row of the slice's middle entry until `release()`: a rematch
 * writing the slice stops there, halfway, with its earlier chunks done (a deterministic
 * "mid-rematch" for kill and stop tests). Needs a server (a second connection).
 */
export async function holdMiddleEmission(
  db: Database,
  det: "plane" | "it",
  year: number,
): Promise<{ release(): Promise<void> }> {
  const rows = await emissionKg(db, det, year);
  const ids = [...rows.keys()];
  const middle = ids[Math.floor(ids.length / 2)];
  return await holdInTransaction(db, async (tx) => {
    await tx`select id from data_entry_emissions where id = ${middle} for update`;
  });
}

/** Holds the (det, year) slice lock in a transaction of its own until released. */
export function holdSliceLock(
  db: Database,
  dataEntryTypeId: number,
  year: number,
): Promise<{ release(): Promise<void> }> {
  return holdInTransaction(db, (tx) => lockSlice(tx, dataEntryTypeId, year));
}
