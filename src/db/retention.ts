/** Deleting what is older than the retention periods, a bounded chunk per statement. */
import { type SQL, sql } from "drizzle-orm";
import type { Database } from "./client";
import { idFloor } from "./ids";
import { CLAIM_DAY_MS } from "./publish";

/** Rows one statement deletes at most, so that no single write holds the database for long. */
export const RETENTION_CHUNK = 2000;

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
 * How each table finds what it may delete, oldest first, at most a chunk. Messages and deliveries
 * walk their primary keys, whose message ids are in time order, so no index on a time column is
 * written with every row. A delivery still being attempted stays, and so does its message, whose
 * stored content (a large message's) its next attempt needs: a replayed dead letter keeps its
 * message's original publication time, and a retry plan may outlast RETENTION_DAYS. Deliveries go
 * first in a run, so a message's open deliveries are all still there when it is checked. A pending
 * entry of a message's own record needs no such care: its first attempt was due long before.
 */
const TABLES = {
  deliveries: (before: number) =>
    sql`delete from deliveries where (message_id, subscriber_id) in (
      select message_id, subscriber_id from deliveries
      where message_id < ${idFloor("msg", before)} and not (${stillOpen("deliveries", before)})
      order by message_id limit ${RETENTION_CHUNK})`,
  messages: (before: number) =>
    sql`delete from messages where id in (
      select id from messages where id < ${idFloor("msg", before)}
        and not exists (select 1 from deliveries as d
          where d.message_id = messages.id and ${stillOpen("d", before)})
      order by id limit ${RETENTION_CHUNK})`,
  // A claim answers for 24 hours from its day at the latest: `before` is the day's end to keep from.
  idempotency_claims: (before: number) =>
    sql`delete from idempotency_claims where (day, topic, key) in (
      select day, topic, key from idempotency_claims where day < ${Math.floor(before / CLAIM_DAY_MS)}
      order by day limit ${RETENTION_CHUNK})`,
  topic_counts: (before: number) =>
    sql`delete from topic_counts where (minute, topic) in (
      select minute, topic from topic_counts where minute < ${before}
      order by minute limit ${RETENTION_CHUNK})`,
  dead_letters: (before: number) =>
    sql`delete from dead_letters where rowid in (
      select rowid from dead_letters where dead_at < ${before} limit ${RETENTION_CHUNK})`,
} as const satisfies Record<string, (before: number) => SQL>;

export type RetainedTable = keyof typeof TABLES;

/** Deletes up to one chunk of `table` rows older than `before`; returns how many went. */
export async function deleteOlderThan(
  db: Database,
  table: RetainedTable,
  before: number,
): Promise<number> {
  const result = await db.run(TABLES[table](before));
  return result.meta.changes ?? 0;
}
