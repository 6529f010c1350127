/**
 * rematch: keeps the emissions of a carbon-accounting database true when its emission factors
 * change. This module is the public API; everything here is re-exported from `src/`.
 *
 * Open a database, import factors or entries, rematch the slices they touched, ask which slices
 * are stale, export what is stored. The command line (`deno task ...`, the bundle and the binary)
 * and the job runner call these same functions.
 *
 * @example
 * ```ts ignore
 * import {
 *   importFactors, openDatabase, readCsvFile, recalculateForDataEntryType, transaction,
 * } from "./mod.ts";
 * await using db = await openDatabase({ databaseUrl: Deno.env.get("DATABASE_URL") });
 * const table = await readCsvFile("plane.csv");
 * await transaction(db.sql, (tx) =>
 *   importFactors(tx, { file: "plane.csv", table, year: 2025, target: { dataEntryTypeId: 20 } })
 * );
 * const result = await recalculateForDataEntryType(db, { dataEntryType: "plane", year: 2025 });
 * console.log(result.kgBefore, result.kgAfter, result.emissionsUpdated);
 * ```
 *
 * @module
 */

// The program
export { VERSION } from "./src/version.ts";

// Databases: opening one, its schema, what can go wrong
export {
  type Database,
  DatabaseBusyError,
  DatabaseConnectError,
  type DatabaseKind,
  openDatabase,
  type OpenDatabaseOptions,
  type Queryable,
  redactDatabaseUrl,
  redactSecrets,
  type Sql,
} from "./src/db/connection.ts";
export {
  applyMigrations,
  type MigrationResult,
  requireCurrentSchema,
  SCHEMA_VERSION,
  schemaVersion,
  SchemaVersionError,
} from "./src/db/migrate.ts";
export { transaction, TransactionOverError, type TransactionSql } from "./src/db/transaction.ts";

// The rematch of a (det, year) slice, and which slices need one
export { recalculateForDataEntryType, rematchInTransaction } from "./src/rematch/run.ts";
export {
  ModulesNotInSliceError,
  type RematchDiffEntry,
  type RematchModuleResult,
  type RematchOptions,
  type RematchResult,
  type RematchRunInfo,
} from "./src/rematch/types.ts";
export { SliceBusyError, type SliceLockWait } from "./src/db/locks.ts";
export {
  type LeftStale,
  leftStale,
  type RematchScope,
  type SliceStatus,
  sliceStatus,
  type SliceStatusOptions,
} from "./src/rematch/state.ts";

// The pure compute, and the per-det handler table
export {
  computeEntry,
  type ComputeInputs,
  type EntryComputation,
} from "./src/compute/compute_entry.ts";
export { createFactorLookup } from "./src/compute/factor_set.ts";
export type { EmissionRow } from "./src/compute/emission_row.ts";
export { getHandler, listHandlers } from "./src/handlers/mod.ts";
export type {
  Classification,
  EntryData,
  Factor,
  FactorLookup,
  Handler,
  LinkKind,
  ReferenceData,
  ReferenceKind,
} from "./src/handlers/types.ts";
export { EntryComputeError } from "./src/handlers/types.ts";

// Data entries: written one by one or from a file
export {
  CollectedStats,
  createEntries,
  type CreateEntriesResult,
  deleteEntry,
  type EntryOutcome,
  type EntryProblem,
  type EntryWriteOptions,
  type NewEntry,
  updateEntry,
  writeCollectedStats,
} from "./src/db/entries.ts";
export {
  type EntriesImportArgs,
  EntriesImportRejected,
  type EntriesImportResult,
  type EntryLineProblem,
  importEntriesFile,
} from "./src/db/entries_import.ts";

// Factors and reference data, from CSV files
export {
  type FactorImportInput,
  FactorImportRejected,
  type FactorImportResult,
  importFactors,
  loadFactorSet,
} from "./src/db/factors.ts";
export { importReferenceFile, type ReferenceImportResult } from "./src/db/reference.ts";
export {
  type CsvTable,
  FileError,
  parseCsv,
  readCsvFile,
  type RowError,
} from "./src/imports/csv.ts";
export type { FactorImportTarget } from "./src/imports/factor_csv.ts";

// What is stored, exported
export {
  EMISSION_EXPORT_COLUMNS,
  type EmissionExportFormat,
  type EmissionExportRow,
  exportEmissions,
  type ExportSink,
} from "./src/db/emissions_export.ts";

// Data entry types (dets) and modules
export {
  type DataEntryType,
  type DetName,
  findDataEntryType,
  findModuleType,
  getDataEntryType,
  listDataEntryTypes,
  MODULE_TYPES,
  type ModuleTypeName,
  unknownDataEntryType,
} from "./src/reference/enums.ts";

// History: factor imports and versions, rollbacks, rematch runs, frozen reports
export {
  currentActor,
  factorSetAsOf,
  factorSetCsv,
  freezeModules,
  FrozenModuleError,
  getFactorImport,
  ImportNotFoundError,
  ImportNotOfSliceError,
  listFactorImports,
  listRematchRuns,
  ReportNotFoundError,
  RollbackConflictError,
  rollbackImport,
  runRollback,
  unfreezeModules,
} from "./src/history/mod.ts";
export type {
  AsOf,
  FactorImport,
  FactorImportDetail,
  FactorImportFilter,
  FactorImportListing,
  FactorSetSnapshot,
  FreezeResult,
  RematchRun,
  RematchRunFilter,
  ReportModule,
  ReportTarget,
  RollbackConflict,
  RollbackOptions,
  RollbackOutcome,
  RollbackResult,
  RunRollbackOptions,
} from "./src/history/mod.ts";
export type { RematchRunModule } from "./src/history/runs.ts";
export type { RollbackChange } from "./src/history/rollback.ts";

// Types the signatures above name (options, parts of results, handler config, stores)
export type { ApplyMigrationsOptions, SchemaClient, SchemaSql } from "./src/db/migrate.ts";
export type { DatabaseAccess, ReservedSql } from "./src/db/connection.ts";
export type { EntryEmissionRow, StoredEmissionRow } from "./src/db/emissions.ts";
export type { LockSliceOptions } from "./src/db/locks.ts";
export type { EntriesFileFormat } from "./src/db/entries_import.ts";
export type {
  FactorIdentity,
  FactorImportRefusal,
  FactorImportSlice,
  FactorSliceChanges,
} from "./src/db/factors.ts";
export type { ImportReferenceOptions, UpsertCounts } from "./src/db/reference.ts";
export type { CellProblem, CsvRow } from "./src/imports/csv.ts";
export type { ImportFileOptions } from "./src/imports/file.ts";
export type {
  BuildingRoom,
  Computation,
  ComputeVars,
  FactorColumns,
  FactorSource,
  FactorValues,
  FormulaEnv,
  FormulaResult,
  Location,
  PreComputeResult,
} from "./src/handlers/types.ts";
export type { SettingName } from "./src/compute/settings.ts";
export type { ChunkWrite, SliceChunk, SliceEntry, SliceStore } from "./src/rematch/types.ts";
export type {
  EntryMarks,
  FactorDifference,
  FactorFingerprint,
  InputsComparison,
  RecordedState,
  RematchSummary,
  SliceComparison,
  SliceStateRecord,
} from "./src/rematch/state.ts";
export type { ModuleStatsChange, ModuleStatsDeltas } from "./src/rematch/module_stats.ts";
export type { FactorVersion, FollowingRun } from "./src/history/imports.ts";
export type { FactorState } from "./src/history/rollback.ts";
export type { StoredRematchResult } from "./src/history/runs.ts";
export { DATA_ENTRY_TYPES } from "./src/reference/enums.ts";
