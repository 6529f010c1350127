// GET /v1/emissions: the export of `emissions export`, streamed.
import { createRoute, z } from "@hono/zod-openapi";
import { exportEmissions } from "../db/emissions_export.ts";
import { findDataEntryType, unknownDataEntryType } from "../reference/enums.ts";
import { invalidField } from "./errors.ts";
import { type ApiApp, ERRORS, type RouteContext, SECURITY } from "./_routes.ts";
import * as S from "./schemas.ts";

/** The emissions export route. */
export function emissionRoutes(app: ApiApp, context: RouteContext): void {
  const { options, db } = context;
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
      },
    }),
    (c) => {
      const { det: detText, year, format } = c.req.valid("query");
      const det = findDataEntryType(detText);
      if (!det) {
        throw invalidField("det", unknownDataEntryType(detText));
      }
      const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
      const writer = writable.getWriter();
      const sink = {
        async write(bytes: Uint8Array) {
          await writer.write(bytes);
          return bytes.byteLength;
        },
      };
      exportEmissions(db, { det: det.id, year, format }, sink).then(
        () => writer.close(),
        (error) => {
          options.log?.({ event: "export_failed", message: String(error) });
          return writer.abort(error);
        },
      ).catch(() => {});
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
