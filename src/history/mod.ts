// History of spec/history.md: factor imports and versions, export as of an import, rollback,
// rematch runs and frozen report modules. Re-exports only.
export { ACTOR_ENV, currentActor } from "./actor.ts";
export {
  changedKeys,
  type FactorImport,
  type FactorImportDetail,
  type FactorImportFilter,
  type FactorImportListing,
  type FactorVersion,
  findFactorImport,
  type FollowingRun,
  getFactorImport,
  ImportNotFoundError,
  lastFactorImports,
  listFactorImports,
} from "./imports.ts";
export {
  type AsOf,
  factorFileColumns,
  factorFileRow,
  factorSetAsOf,
  factorSetCsv,
  type FactorSetSnapshot,
  ImportNotOfSliceError,
} from "./export.ts";
export {
  type RollbackConflict,
  RollbackConflictError,
  rollbackImport,
  type RollbackOptions,
  type RollbackOutcome,
  type RollbackResult,
  runRollback,
  type RunRollbackOptions,
} from "./rollback.ts";
export {
  listRematchRuns,
  recordRematchRun,
  type RematchRun,
  type RematchRunFilter,
} from "./runs.ts";
export {
  freezeModules,
  type FreezeResult,
  type FrozenModuleBehind,
  FrozenModuleError,
  frozenModules,
  frozenModulesBehind,
  type ReportModule,
  ReportNotFoundError,
  type ReportTarget,
  unfreezeModules,
} from "./freeze.ts";
export { sha256Hex } from "./sha256.ts";
