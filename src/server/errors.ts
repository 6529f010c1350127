// API errors: `{error: {code, message, details?}}` with the status of spec/interfaces.md §4.

/** The statuses the API answers errors with. */
export type ErrorStatus = 400 | 401 | 404 | 409 | 413 | 415 | 422 | 500 | 503;

/** An error the API answers with its own status and code. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: ErrorStatus,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** A 400 naming the field: `field: problem`. */
export function invalidField(field: string, problem: string): ApiError {
  return new ApiError(400, "validation", `${field}: ${problem}`, [{
    path: field,
    message: problem,
  }]);
}

/** The JSON body of an error. */
export function errorBody(
  code: string,
  message: string,
  details?: unknown,
): { error: { code: string; message: string; details?: unknown } } {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** zod issues as `field: problem; ...` (the field prefixed with where it was: query, body). */
export function describeIssues(
  issues: readonly { path: readonly PropertyKey[]; message: string }[],
): { message: string; details: { path: string; message: string }[] } {
  const details = issues.map((issue) => ({
    path: issue.path.map(String).join(".") || "(body)",
    message: issue.message,
  }));
  return { message: details.map((d) => `${d.path}: ${d.message}`).join("; "), details };
}
