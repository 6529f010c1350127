// Reference data in the database: set-based upserts of locations, building rooms and exchange
// rates, the one read of them a slice needs, and the import of a reference file.
import type { Database, Queryable } from "./connection.ts";
import type { BuildingRoom, Location, ReferenceData, ReferenceKind } from "../handlers/types.ts";
import {
  type LocationRow,
  type RateRow,
  readReferenceFile,
  type ReferenceFile,
  type ReferenceRows,
  type RoomRow,
} from "../imports/reference_csv.ts";
import { rateKey, roomKey } from "../reference/natural_key.ts";
import type { RowError } from "../imports/csv.ts";
import { transaction } from "./transaction.ts";

/** What an upsert did: new rows, rows whose values changed, rows already exactly so. */
export interface UpsertCounts {
  readonly inserted: number;
  readonly updated: number;
  readonly unchanged: number;
}

/**
 * Upserts locations by natural key in one statement: new keys are inserted, known keys keep
 * their `id` and take the row's values. Natural keys must be unique within `rows`.
 *
 * @example
 * ```ts ignore
 * import { upsertLocations } from "./reference.ts";
 * import { transaction } from "./transaction.ts";
 * const counts = await transaction(db.sql, (tx) =>
 *   upsertLocations(tx, [{
 *     transportMode: "plane", name: "Geneva", iataCode: "GVA", countryCode: "CH",
 *     latitude: 46.2381, longitude: 6.109, naturalKey: "plane:GVA",
 *   }])
 * );
 * ```
 */
export async function upsertLocations(
  tx: Queryable,
  rows: readonly LocationRow[],
): Promise<UpsertCounts> {
  if (rows.length === 0) return NOTHING;
  // xmax = 0 marks a freshly inserted row; an unchanged row is filtered by the WHERE and
  // returns nothing, so it is neither rewritten nor counted as updated.
  const written = await tx<{ inserted: boolean }[]>`
    insert into locations as l
      (transport_mode, name, iata_code, country_code, latitude, longitude, natural_key)
    select * from unnest(
      ${rows.map((r) => r.transportMode)}::text[],
      ${rows.map((r) => r.name)}::text[],
      ${rows.map((r) => r.iataCode)}::text[],
      ${rows.map((r) => r.countryCode)}::text[],
      ${rows.map((r) => r.latitude)}::float8[],
      ${rows.map((r) => r.longitude)}::float8[],
      ${rows.map((r) => r.naturalKey)}::text[]
    )
    on conflict (natural_key) do update set
      transport_mode = excluded.transport_mode,
      name = excluded.name,
      iata_code = excluded.iata_code,
      country_code = excluded.country_code,
      latitude = excluded.latitude,
      longitude = excluded.longitude
    where (l.transport_mode, l.name, l.iata_code, l.country_code, l.latitude, l.longitude)
      is distinct from (excluded.transport_mode, excluded.name, excluded.iata_code,
        excluded.country_code, excluded.latitude, excluded.longitude)
    returning (xmax = 0) as inserted`;
  return countWritten(rows.length, written);
}

/**
 * Upserts building rooms by (building_name, room_name) in one statement; known rooms keep their
 * `id`. The pairs must be unique within `rows`.
 */
export async function upsertRooms(
  tx: Queryable,
  rows: readonly RoomRow[],
): Promise<UpsertCounts> {
  if (rows.length === 0) return NOTHING;
  const written = await tx<{ inserted: boolean }[]>`
    insert into building_rooms as b
      (building_name, room_name, room_type, room_surface_square_meter)
    select * from unnest(
      ${rows.map((r) => r.buildingName)}::text[],
      ${rows.map((r) => r.roomName)}::text[],
      ${rows.map((r) => r.roomType)}::text[],
      ${rows.map((r) => r.surfaceSquareMeter)}::float8[]
    )
    on conflict (building_name, room_name) do update set
      room_type = excluded.room_type,
      room_surface_square_meter = excluded.room_surface_square_meter
    where (b.room_type, b.room_surface_square_meter)
      is distinct from (excluded.room_type, excluded.room_surface_square_meter)
    returning (xmax = 0) as inserted`;
  return countWritten(rows.length, written);
}

/**
 * Upserts exchange rates by (year, currency) in one statement. The pairs must be unique within
 * `rows`; currencies are stored as given (the parser lower-cases them).
 */
export async function upsertRates(
  tx: Queryable,
  rows: readonly RateRow[],
): Promise<UpsertCounts> {
  if (rows.length === 0) return NOTHING;
  const written = await tx<{ inserted: boolean }[]>`
    insert into exchange_rates as r (year, currency, eur_per_unit)
    select * from unnest(
      ${rows.map((r) => r.year)}::int[],
      ${rows.map((r) => r.currency)}::text[],
      ${rows.map((r) => r.eurPerUnit)}::float8[]
    )
    on conflict (year, currency) do update set eur_per_unit = excluded.eur_per_unit
    where r.eur_per_unit is distinct from excluded.eur_per_unit
    returning (xmax = 0) as inserted`;
  return countWritten(rows.length, written);
}

/** Which part of the reference data to read. */
export interface ReferenceScope {
  /** Read only the exchange rates of these years. @default every year */
  years?: readonly number[];
}

/**
 * Reads each requested kind of reference data once, into the maps of {@linkcode ReferenceData};
 * kinds not requested are empty maps. Locations are keyed by natural key, rooms by
 * {@linkcode roomKey}, rates by {@linkcode rateKey}.
 *
 * @example
 * ```ts ignore
 * import { loadReferenceData } from "./reference.ts";
 * import { stationLookupKey } from "../reference/natural_key.ts";
 * const reference = await loadReferenceData(db.sql, ["locations"]);
 * const zurich = reference.locations.get(stationLookupKey("CH", "zürich"));
 * ```
 */
export async function loadReferenceData(
  sql: Queryable,
  kinds: readonly ReferenceKind[],
  scope: ReferenceScope = {},
): Promise<ReferenceData> {
  const wanted = new Set(kinds);
  const locations = new Map<string, Location>();
  const rooms = new Map<string, BuildingRoom>();
  const rates = new Map<string, number>();
  if (wanted.has("locations")) {
    const rows = await sql<Location[]>`
      select id, transport_mode as "transportMode", name, iata_code as "iataCode",
        country_code as "countryCode", latitude, longitude, natural_key as "naturalKey"
      from locations order by id`;
    for (const row of rows) locations.set(row.naturalKey, { ...row });
  }
  if (wanted.has("rooms")) {
    const rows = await sql<BuildingRoom[]>`
      select building_name as "buildingName", room_name as "roomName", room_type as "roomType",
        room_surface_square_meter as "surfaceSquareMeter"
      from building_rooms order by id`;
    for (const row of rows) rooms.set(roomKey(row.buildingName, row.roomName), { ...row });
  }
  if (wanted.has("rates")) {
    const rows = scope.years
      ? await sql<RateRow[]>`
        select year, currency, eur_per_unit as "eurPerUnit" from exchange_rates
        where year = any(${[...scope.years]}::int[])`
      : await sql<RateRow[]>`
        select year, currency, eur_per_unit as "eurPerUnit" from exchange_rates`;
    for (const row of rows) rates.set(rateKey(row.year, row.currency), row.eurPerUnit);
  }
  return { locations, rooms, rates };
}

/** Options of {@linkcode importReferenceFile}. */
export interface ImportReferenceOptions {
  /** Any row error aborts the import and nothing is written. @default false */
  strict?: boolean;
  /** Refuse files larger than this many bytes. @default the reader's limit (256 MiB) */
  maxFileBytes?: number;
}

/** The outcome of a reference import. */
export interface ReferenceImportResult extends UpsertCounts {
  readonly kind: ReferenceKind;
  readonly file: string;
  /** False when `strict` met a row error: the database was not touched. */
  readonly written: boolean;
  readonly rowsRead: number;
  readonly rowErrors: readonly RowError[];
  readonly rowErrorsCount: number;
}

/**
 * Reads a reference file (CSV, or JSON lines for `.jsonl` / `.ndjson`) and upserts its good rows
 * in one transaction. Bad rows are reported and skipped; with `strict` any bad row means nothing
 * is written. A file-level problem throws `FileError` before anything is written.
 *
 * @example
 * ```ts ignore
 * import { importReferenceFile } from "./reference.ts";
 * const result = await importReferenceFile(db, "rates", "fixtures/reference/rates.csv");
 * console.log(result.inserted, result.rowErrorsCount);
 * ```
 */
export async function importReferenceFile(
  db: Pick<Database, "sql">,
  kind: ReferenceKind,
  path: string,
  options: ImportReferenceOptions = {},
): Promise<ReferenceImportResult> {
  const parsed = await readReferenceFile(kind, path, { maxBytes: options.maxFileBytes });
  return importReferenceRows(() => Promise.resolve(db), path, parsed, options);
}

// What every reference import reports about its file, whatever it writes.
function reportOf<K extends ReferenceKind>(file: string, parsed: ReferenceFile<K>) {
  return {
    kind: parsed.kind,
    file,
    rowsRead: parsed.rowsRead,
    rowErrors: parsed.rowErrors,
    rowErrorsCount: parsed.rowErrorsCount,
  };
}

// A strict import with a bad row writes nothing: its result, or undefined when it may go on.
function refusedAsStrict<K extends ReferenceKind>(
  file: string,
  parsed: ReferenceFile<K>,
  options: ImportReferenceOptions,
): ReferenceImportResult | undefined {
  if (!options.strict || parsed.rowErrorsCount === 0) return undefined;
  return { ...reportOf(file, parsed), written: false, ...NOTHING };
}

/**
 * Upserts an already parsed reference file in one transaction (see
 * {@linkcode importReferenceFile}). The database is asked for only when there is something to
 * write, so a strict import with bad rows never opens it.
 */
export async function importReferenceRows<K extends ReferenceKind>(
  database: () => Promise<Pick<Database, "sql">>,
  file: string,
  parsed: ReferenceFile<K>,
  options: ImportReferenceOptions = {},
): Promise<ReferenceImportResult> {
  const refused = refusedAsStrict(file, parsed, options);
  if (refused) return refused;
  const db = await database();
  return await transaction(
    db.sql,
    (tx) => importReferenceInTransaction(tx, file, parsed, options),
  );
}

/**
 * The reference import inside a transaction the caller holds (the reference_ingest job): with
 * `strict` and a row error nothing is written (`written: false`), else the good rows are
 * upserted.
 */
export async function importReferenceInTransaction<K extends ReferenceKind>(
  tx: Queryable,
  file: string,
  parsed: ReferenceFile<K>,
  options: ImportReferenceOptions = {},
): Promise<ReferenceImportResult> {
  const refused = refusedAsStrict(file, parsed, options);
  if (refused) return refused;
  const report = reportOf(file, parsed);
  const counts = await upsertReference(tx, parsed.kind, parsed.rows);
  return { ...report, written: true, ...counts };
}

/** Upserts rows of any reference kind (the parser's rows, keys unique). */
export function upsertReference<K extends ReferenceKind>(
  tx: Queryable,
  kind: K,
  rows: readonly ReferenceRows[K][],
): Promise<UpsertCounts> {
  const upsert = UPSERTS[kind] as (
    tx: Queryable,
    rows: readonly ReferenceRows[K][],
  ) => Promise<UpsertCounts>;
  return upsert(tx, rows);
}

const UPSERTS: {
  readonly [K in ReferenceKind]: (
    tx: Queryable,
    rows: readonly ReferenceRows[K][],
  ) => Promise<UpsertCounts>;
} = { locations: upsertLocations, rooms: upsertRooms, rates: upsertRates };

const NOTHING: UpsertCounts = { inserted: 0, updated: 0, unchanged: 0 };

function countWritten(total: number, written: readonly { inserted: boolean }[]): UpsertCounts {
  const inserted = written.filter((r) => r.inserted).length;
  return { inserted, updated: written.length - inserted, unchanged: total - written.length };
}
