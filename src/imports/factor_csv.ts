// Factor CSV rows → validated factor rows (spec/factors-csv.md §1). Pure: no database.
import { parseDecimal } from "../text/decimal.ts";
import { emissionTypeById } from "../reference/emission_types.ts";
import { getHandler } from "../handlers/mod.ts";
import type { Classification, FactorColumns, FactorValues } from "../handlers/types.ts";
import {
  type DataEntryType,
  type DetName,
  findModuleType,
  getDataEntryType,
  listDataEntryTypes,
  MODULE_TYPES,
} from "../reference/enums.ts";
import {
  type CsvTable,
  keyProblem,
  requireColumns,
  type RowError,
  RowErrorList,
  rowProblem,
} from "./csv.ts";

/** What a factor file is imported for: one det, or a whole module routed row by row. */
export type FactorImportTarget =
  | { readonly dataEntryTypeId: number }
  | { readonly moduleTypeId: number };

/** One valid factor row of the file. */
export interface ParsedFactorRow {
  readonly row: number;
  /** The file line the row starts on. */
  readonly line: number;
  readonly dataEntryTypeId: number;
  readonly emissionTypeId: number;
  readonly classification: Classification;
  readonly values: FactorValues;
}

/** A validated factor file. */
export interface ParsedFactorTable {
  /** The valid rows, in file order. */
  readonly rows: ParsedFactorRow[];
  /** The first {@linkcode MAX_LISTED_ROW_ERRORS} row errors, in file order. */
  readonly rowErrors: RowError[];
  /** Every row error, listed or not. */
  readonly rowErrorsCount: number;
  /** Data rows in the file. */
  readonly rowsRead: number;
}

/** How a whole-module file names each row's det. */
interface ModuleRouting {
  readonly column: string;
  readonly dets: readonly DetName[];
}

// Only these modules take one file for several dets; additional_purchases has its own columns,
// so it is not a purchase_category.
const MODULE_ROUTING: Readonly<Record<number, ModuleRouting>> = {
  [MODULE_TYPES.equipment]: { column: "equipment_category", dets: ["scientific", "it", "other"] },
  [MODULE_TYPES.purchase]: {
    column: "purchase_category",
    dets: [
      "scientific_equipment",
      "it_equipment",
      "consumable_accessories",
      "biological_chemical_gaseous_product",
      "services",
      "vehicles",
      "other_purchases",
    ],
  },
};

/** The dets a target covers, in id order, and the routing column of its module. */
export interface ResolvedFactorTarget {
  readonly dets: readonly DataEntryType[];
  /**
   * Set for a whole-module file (each row names its det), and for one det of a routed module:
   * a file made for the whole module may then hold rows of other dets, which must not land in
   * this one.
   */
  readonly routing?: {
    readonly column: string;
    readonly moduleName: string;
    /** True when the file is for the whole module; false for one of its dets. */
    readonly wholeModule: boolean;
  };
}

/**
 * Resolves an import target. A module without a routing column is accepted only when it has a
 * single det. Throws a RangeError naming what to use instead.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveFactorTarget } from "./factor_csv.ts";
 * const target = resolveFactorTarget({ moduleTypeId: 4 });
 * assert.equal(target.routing?.column, "equipment_category");
 * assert.deepEqual(target.dets.map((d) => d.name), ["scientific", "it", "other"]);
 * assert.equal(resolveFactorTarget({ dataEntryTypeId: 11 }).routing?.wholeModule, false);
 * ```
 */
export function resolveFactorTarget(target: FactorImportTarget): ResolvedFactorTarget {
  if ("dataEntryTypeId" in target) {
    const det = getDataEntryType(target.dataEntryTypeId);
    const routing = MODULE_ROUTING[det.moduleTypeId];
    if (!routing?.dets.includes(det.name)) return { dets: [det] };
    const moduleName = findModuleType(det.moduleTypeId)!.name;
    return { dets: [det], routing: { column: routing.column, moduleName, wholeModule: false } };
  }
  const module = findModuleType(target.moduleTypeId);
  if (!module) throw new RangeError(`unknown module type ${target.moduleTypeId}`);
  const routing = MODULE_ROUTING[module.id];
  if (routing) {
    const dets = routing.dets.map((name) => getDataEntryType(name)).sort((a, b) => a.id - b.id);
    return {
      dets,
      routing: { column: routing.column, moduleName: module.name, wholeModule: true },
    };
  }
  const dets = listDataEntryTypes().filter((d) => d.moduleTypeId === module.id);
  if (dets.length !== 1) {
    throw new RangeError(
      `module ${module.name} has no routing column: import each of its data entry types with --det (${
        dets.map((d) => d.name).join(", ") || "none"
      })`,
    );
  }
  return { dets };
}

/**
 * The columns a factor file for `target` must have (its routing column when it is a whole
 * module's, and every det's required columns), and every column the import reads (the others are
 * ignored).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { factorFileColumns } from "./factor_csv.ts";
 * const { required, read } = factorFileColumns({ dataEntryTypeId: 21 }); // train
 * assert.deepEqual(required, ["country_code", "ef_kg_co2eq_per_km"]);
 * assert.deepEqual(read, ["country_code", "ef_kg_co2eq_per_km"]);
 * ```
 */
export function factorFileColumns(
  target: FactorImportTarget,
): { required: string[]; read: string[] } {
  const resolved = resolveFactorTarget(target);
  const required = new Set<string>();
  if (resolved.routing?.wholeModule) required.add(resolved.routing.column);
  // A routing column is read whenever the module has one (with one det targeted, a row routed to
  // another det is a row error).
  const read = new Set<string>(resolved.routing ? [resolved.routing.column] : []);
  for (const det of resolved.dets) {
    const columns = getHandler(det).factorColumns;
    columns.required.forEach((c) => required.add(c));
    [...columns.required, ...columns.classification, ...columns.values].forEach((c) => read.add(c));
  }
  return { required: [...required], read: [...read] };
}

/**
 * Validates a factor CSV table for one det or one module (spec/factors-csv.md §1): routes each
 * row to its det, builds classification and values, resolves the emission type and reports bad
 * and duplicate rows. Missing required columns are a {@linkcode FileError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCsv } from "./csv.ts";
 * import { parseFactorTable } from "./factor_csv.ts";
 * const table = parseCsv("train.csv", "country_code,ef_kg_co2eq_per_km\nCH,0.007\nFR,-1\n");
 * const parsed = parseFactorTable("train.csv", table, { dataEntryTypeId: 21 });
 * assert.equal(parsed.rows[0].values.ef_kg_co2eq_per_km, 0.007);
 * assert.deepEqual(parsed.rowErrors.map((e) => [e.row, e.line, e.column]), [
 *   [2, 3, "ef_kg_co2eq_per_km"],
 * ]);
 * ```
 */
export function parseFactorTable(
  file: string,
  table: CsvTable,
  target: FactorImportTarget,
): ParsedFactorTable {
  const resolved = resolveFactorTarget(target);
  const columnsByDet = new Map(
    resolved.dets.map((det) => [det.name, getHandler(det).factorColumns]),
  );
  const { required, read } = factorFileColumns(target);
  requireColumns(file, table, required, read);

  const errors = new RowErrorList();
  const rows: ParsedFactorRow[] = [];
  // Each identity's first row, rejected or not: a later row of the same identity is a duplicate
  // even when the first one has errors of its own.
  const firstOfIdentity = new Map<string, { row: number; line: number; rejected: boolean }>();
  for (const csvRow of table.rows) {
    const { row, line, cells } = csvRow;
    const fail = (problem: { column?: string; message: string }) =>
      errors.add({ row, line, ...problem });
    // A cell the database could not store is a row error in a column the import reads only.
    const unstorable = rowProblem(csvRow, read);
    const det = routeRow(cells, resolved);
    if ("error" in det) {
      fail(unstorable ?? { column: resolved.routing?.column, message: det.error });
      continue;
    }
    const columns = columnsByDet.get(det.name)!;
    // In a value column it is that value's error: the row's identity still counts.
    const inValue = unstorable?.column !== undefined && columns.values.includes(unstorable.column);
    if (unstorable && !inValue) {
      fail(unstorable);
      continue;
    }
    const built = buildFactor(cells, columns);
    const problems: { column?: string; message: string }[] = unstorable
      ? [unstorable, ...built.errors.filter((e) => e.column !== unstorable.column)]
      : [...built.errors];
    if (!problems.length) {
      const problem = columns.check?.(built.values);
      if (problem) problems.push(problem);
    }
    // The identity needs a sound classification; bad values do not hide it.
    const classified = !built.errors.some((e) => columns.classification.includes(e.column));
    let identity: { text: string; emissionTypeId: number } | undefined;
    if (classified) {
      const classificationText = JSON.stringify(built.classification);
      const tooLong = keyProblem("the classification", classificationText);
      const emissionTypeId = tooLong ? undefined : emissionTypeOf(det, built.classification);
      if (tooLong) {
        problems.push({ column: longestCell(built.classification), message: tooLong });
      } else if (emissionTypeId === undefined) {
        const handler = getHandler(det);
        problems.push({
          message: `cannot resolve the emission type of this ${det.name} factor from ${
            describeClassification(built.classification)
          } (expected ${
            handler.factorEmissionTypeExpected ??
              `values naming a known ${det.name} emission type`
          })`,
        });
      } else {
        identity = {
          text: `${det.id}\u0000${emissionTypeId}\u0000${classificationText}`,
          emissionTypeId,
        };
      }
    }
    const first = identity && firstOfIdentity.get(identity.text);
    if (identity && first) {
      problems.push({
        message:
          `duplicate of row ${first.row} (line ${first.line}): rows ${first.row} and ${row} ` +
          `(lines ${first.line} and ${line}) have the same ${det.name} factor identity (emission ` +
          `type ${identity.emissionTypeId}, ${describeClassification(built.classification)}); ` +
          (first.rejected
            ? `row ${first.row} comes first and is rejected, so neither is imported`
            : `row ${first.row} is kept`),
      });
    } else if (identity) {
      firstOfIdentity.set(identity.text, { row, line, rejected: problems.length > 0 });
    }
    if (problems.length || !identity) {
      problems.forEach(fail);
      continue;
    }
    const emissionTypeId = identity.emissionTypeId;
    rows.push({
      row,
      line,
      dataEntryTypeId: det.id,
      emissionTypeId,
      classification: built.classification,
      values: built.values,
    });
  }
  return {
    rows,
    rowErrors: errors.listed,
    rowErrorsCount: errors.count,
    rowsRead: table.rows.length,
  };
}

function routeRow(
  cells: Readonly<Record<string, string>>,
  resolved: ResolvedFactorTarget,
): DataEntryType | { error: string } {
  const { routing, dets } = resolved;
  if (!routing) return dets[0];
  const value = cells[routing.column] ?? "";
  // Det names are case-insensitive everywhere (README), here too.
  const name = value.toLowerCase();
  if (!routing.wholeModule) {
    // One det of a routed module: a blank routing cell or the det's own name is this det; any
    // other value is a row meant for another det of the module.
    const [det] = dets;
    if (name === "" || name === det.name) return det;
    return {
      error: `this row is for "${value}", not ${det.name}: a file with rows for several data ` +
        `entry types of module ${routing.moduleName} is imported with --module ${routing.moduleName}`,
    };
  }
  const expected = `expected a data entry type of module ${routing.moduleName}: ${
    dets.map((d) => d.name).join(", ")
  }`;
  if (!value) return { error: `required value is blank (${expected})` };
  const det = dets.find((d) => d.name === name);
  return det ?? { error: `"${value}" is not a known category (${expected})` };
}

function buildFactor(
  cells: Readonly<Record<string, string>>,
  columns: FactorColumns,
): {
  classification: Classification;
  values: FactorValues;
  errors: { column: string; message: string }[];
} {
  const errors: { column: string; message: string }[] = [];
  const classification: Classification = {};
  const values: FactorValues = {};
  for (const column of columns.required) {
    if (!cells[column]) errors.push({ column, message: "required value is blank" });
  }
  for (const column of columns.classification) {
    const cell = cells[column] ?? "";
    classification[column] = cell || null;
    if (cell) {
      checkEnum(column, cell, columns, errors);
      const wrong = columns.cellChecks?.[column]?.(cell);
      if (wrong) errors.push({ column, message: wrong });
    }
  }
  for (const column of columns.values) {
    const cell = cells[column] ?? "";
    if (!cell) continue;
    checkEnum(column, cell, columns, errors);
    const number = parseDecimal(cell);
    if (columns.textValues?.includes(column)) {
      values[column] = number ?? cell;
      continue;
    }
    if (number === undefined) {
      errors.push({ column, message: `"${cell}" is not a number (expected a finite number ≥ 0)` });
      continue;
    }
    if (number < 0) {
      errors.push({ column, message: `${cell} is negative (expected a finite number ≥ 0)` });
      continue;
    }
    const range = columns.integers?.[column];
    if (range && (!Number.isInteger(number) || number < range[0] || number > range[1])) {
      errors.push({
        column,
        message: `${cell} is not allowed (expected an integer from ${range[0]} to ${range[1]})`,
      });
      continue;
    }
    values[column] = number;
  }
  return { classification, values, errors };
}

function checkEnum(
  column: string,
  cell: string,
  columns: FactorColumns,
  errors: { column: string; message: string }[],
): void {
  const allowed = columns.enums?.[column];
  if (allowed && !allowed.includes(cell)) {
    errors.push({
      column,
      message: `"${cell}" is not allowed (expected one of ${allowed.join(", ")})`,
    });
  }
}

/** The factor's emission type, when its handler resolves one of the emission-type tree. */
function emissionTypeOf(det: DataEntryType, classification: Classification): number | undefined {
  const id = getHandler(det).factorEmissionType(classification);
  return typeof id === "number" && emissionTypeById(id) ? id : undefined;
}

function longestCell(classification: Classification): string | undefined {
  let longest: string | undefined;
  for (const [column, value] of Object.entries(classification)) {
    if (
      value !== null &&
      (longest === undefined || value.length > (classification[longest]?.length ?? 0))
    ) {
      longest = column;
    }
  }
  return longest;
}

function describeClassification(classification: Classification): string {
  return Object.entries(classification)
    .map(([column, value]) => `${column}=${value === null ? "(blank)" : JSON.stringify(value)}`)
    .join(", ");
}
