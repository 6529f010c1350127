/**
 * rematch: keeps the emissions of a carbon-accounting database true when its emission factors
 * change. This module is the public API; everything here is re-exported from `src/`.
 *
 * @module
 */
export {
  type Database,
  openDatabase,
  type OpenDatabaseOptions,
  type Sql,
} from "./src/db/connection.ts";
export { applyMigrations, SCHEMA_VERSION, schemaVersion } from "./src/db/migrate.ts";
export { recalculateForDataEntryType, rematchInTransaction } from "./src/rematch/run.ts";
export type {
  RematchDiffEntry,
  RematchModuleResult,
  RematchOptions,
  RematchResult,
  RematchRunInfo,
} from "./src/rematch/types.ts";
export {
  type LeftStale,
  leftStale,
  type RematchScope,
  type SliceStatus,
  sliceStatus,
  type SliceStatusOptions,
} from "./src/rematch/state.ts";
export {
  computeEntry,
  type ComputeInputs,
  type EntryComputation,
} from "./src/compute/compute_entry.ts";
export { createFactorLookup } from "./src/compute/factor_set.ts";
export type { EmissionRow } from "./src/compute/emission_row.ts";
export { getHandler, listHandlers } from "./src/handlers/mod.ts";
export type { Factor, Handler, ReferenceData } from "./src/handlers/types.ts";
export { EntryComputeError } from "./src/handlers/types.ts";
export { createEntries, deleteEntry, type NewEntry, updateEntry } from "./src/db/entries.ts";
export {
  type FactorImportInput,
  FactorImportRejected,
  type FactorImportResult,
  importFactors,
  loadFactorSet,
} from "./src/db/factors.ts";
export { findDataEntryType, getDataEntryType, listDataEntryTypes } from "./src/reference/enums.ts";
export {
  currentActor,
  factorSetAsOf,
  factorSetCsv,
  freezeModules,
  FrozenModuleError,
  getFactorImport,
  ImportNotFoundError,
  listFactorImports,
  listRematchRuns,
  RollbackConflictError,
  rollbackImport,
  runRollback,
  unfreezeModules,
} from "./src/history/mod.ts";
export type {
  FactorImport,
  FactorImportDetail,
  FactorImportListing,
  FactorSetSnapshot,
  RematchRun,
  RollbackResult,
} from "./src/history/mod.ts";
