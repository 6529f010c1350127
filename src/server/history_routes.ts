// The /v1/history routes (spec/history.md §3): the factor imports, one import with the factors it
// changed, and the rematch runs. Thin views of the functions `factors history`, `factors diff`
// and `rematch history` run.
import { createRoute } from "@hono/zod-openapi";
import { getFactorImport, ImportNotFoundError, listFactorImports } from "../history/imports.ts";
import { listRematchRuns } from "../history/runs.ts";
import { ApiError, invalidField } from "./errors.ts";
import { type ApiApp, ERRORS, json, type RouteContext, SECURITY } from "./_routes.ts";
import * as S from "./schemas.ts";
import { factorImportDetailView, factorImportListedView, rematchRunView } from "./views.ts";

/** Changes an import's detail lists without a `limit`. */
const DEFAULT_LISTED_VERSIONS = 1000;

/** The history routes. */
export function historyRoutes(app: ApiApp, context: RouteContext): void {
  const { sql } = context;

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/history/imports",
      summary: "Factor imports (uploads, CLI imports, rollbacks), newest first, with the " +
        "rematch runs that followed each (`factors history`)",
      security: SECURITY,
      request: { query: S.ImportListQuery },
      responses: { 200: json(S.FactorImportList, "a page of imports"), ...ERRORS },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const { rows, nextCursor } = await page(
        "imports",
        q,
        (limit, before) =>
          listFactorImports(sql, { dataEntryTypeId: q.det, year: q.year, limit, before }),
      );
      return c.json({ imports: rows.map(factorImportListedView), next_cursor: nextCursor }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/history/imports/{id}",
      summary: "One factor import and each factor it changed, old → new values " +
        "(`factors diff --import N`)",
      security: SECURITY,
      request: { params: S.ImportIdParam, query: S.ImportDetailQuery },
      responses: {
        200: json(S.FactorImportDetail, "the import and a page of its changes"),
        ...ERRORS,
        404: json(S.ErrorResponse, "no such import"),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { limit = DEFAULT_LISTED_VERSIONS, offset = 0 } = c.req.valid("query");
      try {
        const detail = await getFactorImport(sql, id, { limit, offset });
        return c.json(factorImportDetailView(detail, offset), 200);
      } catch (error) {
        if (!(error instanceof ImportNotFoundError)) throw error;
        throw new ApiError(
          404,
          "not_found",
          `no factor import ${id} (GET /v1/history/imports lists them)`,
        );
      }
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/history/rematches",
      summary: "Recorded rematch runs, newest first (`rematch history`)",
      security: SECURITY,
      request: { query: S.RunListQuery },
      responses: { 200: json(S.RematchRunList, "a page of runs"), ...ERRORS },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const { rows, nextCursor } = await page(
        "rematches",
        q,
        (limit, before) =>
          listRematchRuns(sql, {
            dataEntryTypeId: q.det,
            year: q.year,
            importId: q.import_id,
            limit,
            before,
          }),
      );
      return c.json({ runs: rows.map(rematchRunView), next_cursor: nextCursor }, 200);
    },
  );
}

type Listing = "imports" | "rematches";

/**
 * A page of a listing ordered by id, newest first: one row more than the page is read, to know
 * whether a next page exists; its cursor is the page's last id.
 */
async function page<T extends { readonly id: number }>(
  listing: Listing,
  query: { readonly limit?: number; readonly cursor?: string },
  list: (limit: number, before: number | undefined) => Promise<T[]>,
): Promise<{ rows: T[]; nextCursor: string | null }> {
  const limit = query.limit ?? 50;
  const before = query.cursor === undefined ? undefined : decodeCursor(listing, query.cursor);
  const rows = await list(limit + 1, before);
  const shown = rows.slice(0, limit);
  const last = shown[shown.length - 1];
  return {
    rows: shown,
    nextCursor: rows.length > limit && last ? encodeCursor(listing, last.id) : null,
  };
}

// A cursor names its listing, so one listing's cursor is refused by the other.
function encodeCursor(listing: Listing, id: number): string {
  return btoa(`${listing}:${id}`).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function decodeCursor(listing: Listing, cursor: string): number {
  let text = "";
  try {
    text = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    // not base64: refused below
  }
  const match = /^([a-z]+):(\d{1,15})$/.exec(text);
  if (!match || match[1] !== listing) {
    throw invalidField("cursor", `not a next_cursor of GET /v1/history/${listing}`);
  }
  return Number(match[2]);
}
