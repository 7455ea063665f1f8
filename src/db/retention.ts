/** Deleting what is older than the retention periods, a bounded chunk per statement. */
import { sql } from "drizzle-orm";
import type { Database } from "./client";

/** Rows one statement deletes at most, so that no single write holds the database for long. */
export const RETENTION_CHUNK = 1000;

const TABLES = {
  messages: { table: "messages", column: "published_at" },
  deliveries: { table: "deliveries", column: "created_at" },
  idempotency_keys: { table: "idempotency_keys", column: "created_at" },
  dead_letters: { table: "dead_letters", column: "dead_at" },
} as const;

export type RetainedTable = keyof typeof TABLES;

/** Deletes up to one chunk of `table` rows older than `before`; returns how many went. */
export async function deleteOlderThan(
  db: Database,
  table: RetainedTable,
  before: number,
): Promise<number> {
  const { column } = TABLES[table];
  const name = sql.identifier(TABLES[table].table);
  const when = sql.identifier(column);
  const result = await db.run(
    sql`delete from ${name} where rowid in (select rowid from ${name} where ${when} < ${before} limit ${RETENTION_CHUNK})`,
  );
  return result.meta.changes ?? 0;
}
