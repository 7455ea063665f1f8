/**
 * The bench's side of the cost Worker's `POST /__cost/sql` and `GET /__cost/constants`: statements
 * run on the database binding itself from inside the Worker, uncounted by the meters, and the
 * broker's retention limits as the Worker was built with them.
 */

import type { SqlRequest, SqlResult } from "../cost/worker";
import type { HttpClient } from "../lib/http";

/** D1's own limits on one statement, which every statement the bench sends stays under. */
export const D1_MAX_STATEMENT_BYTES = 100_000;
export const D1_MAX_PARAMETERS = 100;

const SQL_TIMEOUT_MS = 120_000;

export async function runSql(http: HttpClient, request: SqlRequest): Promise<SqlResult> {
  for (const { sql, params = [] } of request.statements) {
    const bytes = Buffer.byteLength(sql) + Buffer.byteLength(JSON.stringify(params));
    if (bytes > D1_MAX_STATEMENT_BYTES || params.length > D1_MAX_PARAMETERS) {
      throw new Error(`a statement of ${bytes} bytes and ${params.length} parameters: too large`);
    }
  }
  const result = await http.expect(200, "POST", "/__cost/sql", {
    json: request,
    timeoutMs: SQL_TIMEOUT_MS,
  });
  return JSON.parse(result.body) as SqlResult;
}

/** The rows of a single query. */
export async function query<T>(http: HttpClient, sql: string, params: unknown[] = []) {
  const result = await runSql(http, { statements: [{ sql, params }] });
  return (result.rows[0] ?? []) as T[];
}

export interface RetentionLimits {
  /** Rows one statement deletes at most. */
  chunk: number;
  /** Chunks per table per run. */
  maxChunks: number;
}

export async function readRetentionLimits(http: HttpClient): Promise<RetentionLimits> {
  const body = JSON.parse((await http.expect(200, "GET", "/__cost/constants")).body) as Record<
    string,
    unknown
  >;
  const { RETENTION_CHUNK: chunk, MAX_CHUNKS_PER_TABLE: maxChunks } = body;
  if (typeof chunk !== "number" || typeof maxChunks !== "number") {
    throw new Error(
      "the broker no longer exports RETENTION_CHUNK and MAX_CHUNKS_PER_TABLE (bench/cost/local.ts)",
    );
  }
  return { chunk, maxChunks };
}
