// GET /v1/emissions: the export of `emissions export`, streamed.
import { createRoute, z } from "@hono/zod-openapi";
import { exportEmissions } from "../db/emissions_export.ts";
import { findDataEntryType, unknownDataEntryType } from "../reference/enums.ts";
import { ApiError, invalidField } from "./errors.ts";
import { type ApiApp, ERRORS, json, type RouteContext, SECURITY, withinMs } from "./_routes.ts";
import * as S from "./schemas.ts";

/**
 * The export's output to the response: a write that the client has not taken within `stallMs`
 * fails, so that an export whose client stopped reading ends (its transaction, and the connection
 * it holds, with it) instead of waiting for it for good.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exportSink } from "./emission_routes.ts";
 * const response = new TransformStream<Uint8Array, Uint8Array>();
 * const client = response.readable.getReader();
 * const sink = exportSink(response.writable.getWriter(), 50);
 * const first = sink.write(new Uint8Array(1));
 * await client.read(); // the client takes the first chunk, then stops reading
 * assert.equal(await first, 1);
 * await assert.rejects(sink.write(new Uint8Array(1)), /read nothing for 0.05 s/);
 * ```
 */
export function exportSink(
  writer: WritableStreamDefaultWriter<Uint8Array>,
  stallMs: number,
): { write(bytes: Uint8Array): Promise<number> } {
  return {
    async write(bytes: Uint8Array) {
      const taken = await withinMs(writer.write(bytes).then(() => true), stallMs);
      if (!taken) throw new Error(`the client read nothing for ${stallMs / 1000} s: export ended`);
      return bytes.byteLength;
    },
  };
}

/** The emissions export route. */
export function emissionRoutes(app: ApiApp, context: RouteContext): void {
  const { options, db } = context;
  const maxExports = options.maxExports ?? 4;
  let exporting = 0;
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/emissions",
      summary: "Every emission row of a (det, year) slice, streamed as CSV or JSON",
      security: SECURITY,
      request: { query: S.EmissionsQuery },
      responses: {
        200: {
          content: {
            "text/csv": { schema: z.string() },
            "application/json": { schema: z.array(S.EmissionExportRow) },
          },
          description: "the rows (the same as `emissions export`)",
        },
        ...ERRORS,
        503: json(S.ErrorResponse, "as many exports as the server streams at once are running"),
      },
    }),
    (c) => {
      const { det: detText, year, format } = c.req.valid("query");
      const det = findDataEntryType(detText);
      if (!det) {
        throw invalidField("det", unknownDataEntryType(detText));
      }
      // Each export holds a connection of the pool the API and the worker share.
      if (exporting >= maxExports) {
        c.header("Retry-After", "5");
        throw new ApiError(
          503,
          "busy",
          `${exporting} exports are running, the most this server streams at once: try again later`,
        );
      }
      exporting++;
      const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
      const writer = writable.getWriter();
      const sink = exportSink(writer, options.exportStallMs ?? 60_000);
      // The slot is given back when the export ends, not when the response does: aborting the
      // response waits for a client that stopped reading to read or go.
      const exported = exportEmissions(db, { det: det.id, year, format }, sink);
      exported.finally(() => exporting--).catch(() => {});
      exported.then(
        () => writer.close().catch(() => {}),
        (error) => {
          options.log?.({ event: "export_failed", message: String(error) });
          writer.abort(error).catch(() => {});
        },
      );
      return new Response(readable, {
        status: 200,
        headers: {
          "content-type": format === "csv" ? "text/csv; charset=utf-8" : "application/json",
          "content-disposition": `attachment; filename="${det.name}-${year}.${format}"`,
        },
      });
    },
  );
}
