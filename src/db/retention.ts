/** Deleting what is older than the retention periods, a bounded chunk per statement. */
import { type SQL, sql } from "drizzle-orm";
import type { Database } from "./client";

/** Rows one statement deletes at most, so that no single write holds the database for long. */
export const RETENTION_CHUNK = 1000;

/**
 * Whether the delivery row named `alias` is still being attempted. One whose next attempt was due
 * before the cutoff has no task left to make it (a queue holds a retry for 12 hours at most), so it
 * no longer counts: otherwise one lost task would keep its row and its message's content forever.
 */
const stillOpen = (alias: string, before: number) => {
  const row = sql.raw(alias);
  return sql`${row}.state IN ('pending', 'retrying')
    AND coalesce(${row}.next_attempt_at, ${row}.created_at) >= ${before}`;
};

/**
 * What each table keeps past its cutoff. A delivery still being attempted stays, and so does its
 * message, whose stored content (a large message's) its next attempt needs: a replayed dead letter
 * keeps its message's original publication time, and a retry plan may outlast RETENTION_DAYS.
 * Deliveries go first in a run, so a message's open deliveries are all still there when it is
 * checked.
 */
const TABLES = {
  messages: {
    table: "messages",
    column: "published_at",
    keep: (before: number) =>
      sql`EXISTS (SELECT 1 FROM deliveries AS d WHERE d.message_id = messages.id AND ${stillOpen("d", before)})`,
  },
  deliveries: {
    table: "deliveries",
    column: "created_at",
    keep: (before: number) => stillOpen("deliveries", before),
  },
  idempotency_keys: { table: "idempotency_keys", column: "created_at", keep: undefined },
  dead_letters: { table: "dead_letters", column: "dead_at", keep: undefined },
} as const satisfies Record<
  string,
  { table: string; column: string; keep: ((before: number) => SQL) | undefined }
>;

export type RetainedTable = keyof typeof TABLES;

/** Deletes up to one chunk of `table` rows older than `before`; returns how many went. */
export async function deleteOlderThan(
  db: Database,
  table: RetainedTable,
  before: number,
): Promise<number> {
  const { column, keep } = TABLES[table];
  const name = sql.identifier(TABLES[table].table);
  const when = sql.identifier(column);
  const kept = keep ? sql` and not (${keep(before)})` : sql``;
  const result = await db.run(
    sql`delete from ${name} where rowid in (select rowid from ${name} where ${when} < ${before}${kept} limit ${RETENTION_CHUNK})`,
  );
  return result.meta.changes ?? 0;
}
