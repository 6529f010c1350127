// POST /v1/files/temp-upload and POST /v1/sync/dispatch: files in, jobs queued.
import { z } from "@hono/zod-openapi";
import { checkWholeFileSize, FileError, FileTooLargeToReadError } from "../imports/file.ts";
import { findUpload, parseUploadPath, storeUpload, uploadHeader } from "../jobs/uploads.ts";
import { planDispatch } from "./dispatch.ts";
import { ApiError, describeIssues, invalidField } from "./errors.ts";
import { multipartBoundary } from "./multipart.ts";
import { type ApiApp, dispatched, ERRORS, json, type RouteContext, SECURITY } from "./_routes.ts";
import * as S from "./schemas.ts";
import { receiveForm } from "./upload.ts";

/** The upload and dispatch routes. */
export function uploadRoutes(app: ApiApp, context: RouteContext): void {
  const { options, sql, queue, maxJsonBytes } = context;
  app.openAPIRegistry.registerPath({
    method: "post",
    path: "/v1/files/temp-upload",
    summary: "Upload CSV files; returns the paths a dispatch names them by",
    security: SECURITY,
    request: {
      body: {
        content: {
          "multipart/form-data": {
            schema: z.object({
              files: z.array(z.string().openapi({ format: "binary" })),
            }),
          },
        },
      },
    },
    responses: {
      201: json(z.array(S.Uploaded), "the files, stored"),
      ...ERRORS,
      413: json(S.ErrorResponse, "a file is larger than the upload limit"),
      415: json(S.ErrorResponse, "not multipart, or a file that is not .csv"),
      422: json(S.ErrorResponse, "a file that is not UTF-8 text, or is empty"),
    },
  });

  app.post("/v1/files/temp-upload", async (c) => {
    const form = await receiveUpload(c.req.raw, ["files"], options);
    try {
      if (form.files.length === 0) throw invalidField("files", "no file was uploaded");
      const stored = [];
      const ids: string[] = [];
      try {
        for (const file of form.files) {
          const upload = await unprocessable(() =>
            storeUpload(sql, {
              path: file.path,
              fileName: file.fileName,
              actor: c.get("actor"),
            })
          );
          ids.push(upload.id);
          stored.push({
            path: upload.path,
            file_name: upload.fileName,
            size_bytes: upload.sizeBytes,
            sha256: upload.sha256,
          });
        }
      } catch (error) {
        // All or nothing: the files stored before the one refused are not kept (their paths were
        // never given out).
        if (ids.length) await sql`delete from uploads where id = any(${ids}::uuid[])`;
        throw error;
      }
      return c.json(stored, 201);
    } finally {
      await form.discard();
    }
  });

  app.openAPIRegistry.registerPath({
    method: "post",
    path: "/v1/sync/dispatch",
    summary: "Queue an import of an uploaded file (a factor upload chains the recalcs)",
    security: SECURITY,
    request: {
      body: {
        content: {
          "application/json": { schema: S.DispatchBody },
          "multipart/form-data": {
            schema: z.object({
              target_type: S.TargetType,
              year: z.string().optional(),
              config: z.string().optional().openapi({ description: "DispatchConfig as JSON" }),
              file: z.string().openapi({ format: "binary" }),
            }),
          },
        },
      },
    },
    responses: {
      202: json(S.Dispatched, "queued"),
      ...ERRORS,
      413: json(S.ErrorResponse, "the file or the body is too large"),
      415: json(S.ErrorResponse, "neither JSON nor multipart, or a file that is not .csv"),
      422: json(
        S.ErrorResponse,
        "a file the import would refuse whole: not UTF-8, empty, a required column missing",
      ),
    },
  });

  app.post("/v1/sync/dispatch", async (c) => {
    const actor = c.get("actor");
    const type = c.req.header("content-type") ?? "";
    if (/^application\/json\b/i.test(type)) {
      const body = await readJsonBody(c.req.raw, maxJsonBytes);
      const parsed = S.DispatchBody.safeParse(body);
      if (!parsed.success) {
        const { message, details } = describeIssues(parsed.error.issues);
        throw new ApiError(400, "validation", message, details);
      }
      const plan = planDispatch(parsed.data);
      const uploadId = parseUploadPath(parsed.data.file_path);
      if (!uploadId) {
        throw invalidField(
          "file_path",
          "not a path returned by POST /v1/files/temp-upload (expected uploads/<id>.csv)",
        );
      }
      const upload = await findUpload(sql, uploadId);
      if (!upload) {
        throw invalidField("file_path", `no upload ${parsed.data.file_path} (it may have expired)`);
      }
      await unprocessable(() => checkWholeFileSize(upload.file_name, upload.size_bytes));
      const header = await uploadHeader(sql, upload.id);
      await unprocessable(() => plan.checkHeader(upload.file_name, header));
      const job = plan.job({ id: upload.id, fileName: upload.file_name });
      const created = await queue(plan.kind, actor, [job], {
        target_type: parsed.data.target_type,
        file_name: upload.file_name,
      });
      return c.json(dispatched(created), 202);
    }
    if (!multipartBoundary(type)) {
      throw new ApiError(
        415,
        "unsupported_media_type",
        "expected application/json (with file_path) or multipart/form-data (with the file in file)",
      );
    }
    const form = await receiveUpload(c.req.raw, ["file"], options);
    try {
      const fields: Record<string, unknown> = {};
      for (const [name, value] of form.fields) {
        if (name === "year") fields.year = /^\s*\d+\s*$/.test(value) ? Number(value) : value;
        else if (name === "config") {
          try {
            fields.config = JSON.parse(value);
          } catch (error) {
            throw invalidField("config", `not valid JSON: ${(error as Error).message}`);
          }
        } else fields[name] = value;
      }
      const parsed = S.DispatchFields.safeParse(fields);
      if (!parsed.success) {
        const { message, details } = describeIssues(parsed.error.issues);
        throw new ApiError(400, "validation", message, details);
      }
      const plan = planDispatch(parsed.data);
      if (form.files.length !== 1) {
        throw invalidField("file", form.files.length ? "send one file" : "is required (the CSV)");
      }
      const [file] = form.files;
      // Every import reads its file whole: one this server could not hold is refused now, not by
      // each worker it would bring down.
      const { size } = await Deno.stat(file.path);
      await unprocessable(() => checkWholeFileSize(file.fileName, size));
      const upload = await unprocessable(() =>
        storeUpload(sql, {
          path: file.path,
          fileName: file.fileName,
          actor,
          checkHeader: (header, name) => plan.checkHeader(name, header),
        })
      );
      const job = plan.job({ id: upload.id, fileName: upload.fileName });
      const created = await queue(plan.kind, actor, [job], {
        target_type: parsed.data.target_type,
        file_name: upload.fileName,
      });
      return c.json(dispatched(created), 202);
    } finally {
      await form.discard();
    }
  });
}

/**
 * Runs `step`; a file the import would refuse whole (a FileError) is a 422 naming the file, one
 * too large for this process to read whole a 413.
 */
async function unprocessable<T>(step: () => T | Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof FileTooLargeToReadError) {
      throw new ApiError(413, "too_large", error.message);
    }
    if (error instanceof FileError) throw new ApiError(422, "unprocessable_file", error.message);
    throw error;
  }
}

async function receiveUpload(
  request: Request,
  fileFields: readonly string[],
  options: RouteContext["options"],
) {
  const boundary = multipartBoundary(request.headers.get("content-type"));
  if (!boundary) {
    throw new ApiError(
      415,
      "unsupported_media_type",
      `expected multipart/form-data with the file in ${fileFields.join(" or ")}`,
    );
  }
  const maxFiles = fileFields.includes("files") ? 10 : 1;
  const declared = Number(request.headers.get("content-length") ?? NaN);
  // Room for the form's own text beside the files.
  if (declared > maxFiles * options.maxUploadBytes + 1024 * 1024) {
    throw new ApiError(
      413,
      "too_large",
      `the request is ${declared} bytes: above the ${options.maxUploadBytes} bytes upload limit`,
    );
  }
  if (!request.body) throw invalidField(fileFields[0], "is required: the request has no body");
  return await receiveForm(request.body, boundary, {
    dir: options.uploadDir,
    fileFields,
    maxFileBytes: options.maxUploadBytes,
    maxFiles,
  });
}

/** Reads a JSON body of at most `limit` bytes; 413 past it, 400 when it is not JSON. */
async function readJsonBody(request: Request, limit: number): Promise<unknown> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > limit) {
    throw new ApiError(413, "too_large", `the body is above the ${limit} bytes limit for JSON`);
  }
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let text = "";
  let size = 0;
  try {
    if (request.body) {
      for await (const chunk of request.body) {
        size += chunk.byteLength;
        if (size > limit) {
          throw new ApiError(
            413,
            "too_large",
            `the body is above the ${limit} bytes limit for JSON`,
          );
        }
        text += decoder.decode(chunk, { stream: true });
      }
    }
    text += decoder.decode();
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new ApiError(400, "validation", "body: not valid UTF-8 text");
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ApiError(400, "validation", `body: not valid JSON: ${(error as Error).message}`);
  }
}
