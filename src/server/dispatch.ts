// What a dispatch asks for, checked against the domain: which job, of which det and module, or a
// 400 naming the field that is wrong.
import type { z } from "@hono/zod-openapi";
import type { NewJob } from "../jobs/types.ts";
import { CsvSyntaxError, parseCsv, requireColumns } from "../imports/csv.ts";
import { factorFileColumns, resolveFactorTarget } from "../imports/factor_csv.ts";
import { REFERENCE_COLUMNS } from "../imports/reference_csv.ts";
import {
  type DataEntryType,
  findDataEntryType,
  findModuleType,
  unknownDataEntryType,
} from "../reference/enums.ts";
import { invalidField } from "./errors.ts";
import type { DispatchFields } from "./schemas.ts";
import { REPLACE_ONLY } from "../db/factors.ts";

/** A dispatch resolved: the pipeline kind and the job to queue for an upload. */
export interface DispatchPlan {
  readonly kind: string;
  readonly job: (upload: { id: string; fileName: string }) => NewJob;
  /**
   * Checks the file's header line as the import will: a FileError (a column missing, or one the
   * import reads named twice) when the import would refuse the file whole.
   */
  readonly checkHeader: (fileName: string, header: string) => void;
}

/** A header check for files that must have `required` (reading `read`, or every column). */
function headerCheck(required: readonly string[], read?: readonly string[]) {
  return (fileName: string, header: string) => {
    let table;
    try {
      table = parseCsv(fileName, `${header}\n`);
    } catch (error) {
      // A header the first line alone cannot show (a quoted line break) is the job's to read.
      if (error instanceof CsvSyntaxError) return;
      throw error;
    }
    requireColumns(fileName, table, required, read);
  };
}

function moduleOf(value: string | number, field: string) {
  const module = findModuleType(value);
  if (!module) {
    throw invalidField(
      field,
      `unknown module "${value}" (expected a name such as equipment, or its id)`,
    );
  }
  return module;
}

function detOf(value: string | number, field: string): DataEntryType {
  const det = findDataEntryType(value);
  if (!det) {
    throw invalidField(field, unknownDataEntryType(value));
  }
  return det;
}

/**
 * Resolves a dispatch's fields into the job it queues. Throws a 400 ApiError naming the field
 * (`year`, `config.module_type_id`, ...) when the combination makes no sense.
 */
export function planDispatch(fields: z.infer<typeof DispatchFields>): DispatchPlan {
  const { target_type: target, year, config } = fields;
  if (target !== "factors") {
    for (const field of ["mode", "allow_empty", "force"] as const) {
      if (config[field] !== undefined) {
        throw invalidField(`config.${field}`, `applies to factors only, not to ${target}`);
      }
    }
  }
  switch (target) {
    case "factors": {
      if (year === undefined) throw invalidField("year", "is required for factors");
      if (config.module_type_id === undefined) {
        throw invalidField("config.module_type_id", "is required for factors");
      }
      for (const field of ["allow_empty", "force"] as const) {
        if (config[field] && config.mode !== "replace") {
          throw invalidField(`config.${field}`, REPLACE_ONLY);
        }
      }
      const module = moduleOf(config.module_type_id, "config.module_type_id");
      const det = config.data_entry_type_id === undefined
        ? undefined
        : detOf(config.data_entry_type_id, "config.data_entry_type_id");
      if (det && det.moduleTypeId !== module.id) {
        throw invalidField(
          "config.data_entry_type_id",
          `${det.name} belongs to module ${det.moduleName}, not ${module.name}`,
        );
      }
      if (!det) {
        try {
          resolveFactorTarget({ moduleTypeId: module.id });
        } catch (error) {
          throw invalidField(
            "config.module_type_id",
            `${(error as Error).message} (give config.data_entry_type_id)`,
          );
        }
      }
      const columns = factorFileColumns(
        det ? { dataEntryTypeId: det.id } : { moduleTypeId: module.id },
      );
      return {
        kind: "factor_upload",
        checkHeader: headerCheck(columns.required, columns.read),
        job: (upload) => ({
          jobType: "factor_ingest",
          moduleTypeId: module.id,
          dataEntryTypeId: det?.id ?? null,
          year,
          input: {
            upload_id: upload.id,
            file_name: upload.fileName,
            year,
            module_type_id: module.id,
            data_entry_type_id: det?.id ?? null,
            mode: config.mode ?? "merge",
            strict: config.strict ?? false,
            allow_empty: config.allow_empty ?? false,
            force: config.force ?? false,
          },
        }),
      };
    }
    case "data_entries": {
      if (config.data_entry_type_id === undefined) {
        throw invalidField(
          "config.data_entry_type_id",
          "is required for data_entries (the det of every row of the CSV)",
        );
      }
      const det = detOf(config.data_entry_type_id, "config.data_entry_type_id");
      if (config.module_type_id !== undefined) {
        const module = moduleOf(config.module_type_id, "config.module_type_id");
        if (module.id !== det.moduleTypeId) {
          throw invalidField(
            "config.data_entry_type_id",
            `${det.name} belongs to module ${det.moduleName}, not ${module.name}`,
          );
        }
      }
      return {
        kind: "entries_upload",
        // Every column of an entries CSV is a field of the entry (or its unit and year).
        checkHeader: headerCheck(["unit", "year"]),
        job: (upload) => ({
          jobType: "entries_ingest",
          moduleTypeId: det.moduleTypeId,
          dataEntryTypeId: det.id,
          year: year ?? null,
          input: {
            upload_id: upload.id,
            file_name: upload.fileName,
            data_entry_type_id: det.id,
            strict: config.strict ?? false,
            ...(year === undefined ? {} : { year }),
          },
        }),
      };
    }
    case "locations":
    case "rooms":
    case "rates":
      return {
        kind: "reference_upload",
        checkHeader: headerCheck(REFERENCE_COLUMNS[target], REFERENCE_COLUMNS[target]),
        job: (upload) => ({
          jobType: "reference_ingest",
          moduleTypeId: null,
          dataEntryTypeId: null,
          // Recorded on the job as given: reference rows give their own year (rates) or none.
          year: year ?? null,
          input: {
            upload_id: upload.id,
            file_name: upload.fileName,
            kind: target,
            strict: config.strict ?? false,
          },
        }),
      };
  }
}
