/**
 * The retention run, every minute: messages (with their idempotency keys), deliveries and the
 * per-minute counts older than RETENTION_DAYS, idempotency claims past their 24 hours, dead letters
 * older than DEAD_LETTER_RETENTION_DAYS, deleted in bounded chunks so that one run stays well
 * inside an invocation's limits (at most 500 of its 1,000 D1 queries);
 * what is left goes in the next run, and a run that stops at its cap says so, since a table that
 * keeps growing faster than that would never be caught up. A delivery still being attempted, and
 * its message, stay until it is finished (see src/db/retention.ts).
 */
import { readConfig } from "../config";
import { openDatabase } from "../db/client";
import { IDEMPOTENCY_WINDOW_MS } from "../db/publish";
import { deleteOlderThan, RETENTION_CHUNK, type RetainedTable } from "../db/retention";
import { logError, logInfo } from "../log";

/**
 * Chunks per table per run: up to 200,000 rows of each table a minute, about 3,300 a second, which
 * keeps pace with that many deliveries a second (one message row each when they succeed at once).
 */
export const MAX_CHUNKS_PER_TABLE = 100;
const DAY_MS = 24 * 60 * 60 * 1000;

/** Runs retention at `now`; returns the rows deleted per table. Never throws. */
export async function runRetention(
  env: Env,
  now: number,
  maxChunksPerTable = MAX_CHUNKS_PER_TABLE,
): Promise<Record<RetainedTable, number>> {
  const config = readConfig(env);
  const db = openDatabase(env.DB);
  const cutoffs: [RetainedTable, number][] = [
    ["deliveries", now - config.retentionDays * DAY_MS],
    ["messages", now - config.retentionDays * DAY_MS],
    ["idempotency_claims", now - IDEMPOTENCY_WINDOW_MS],
    ["topic_counts", now - config.retentionDays * DAY_MS],
    ["dead_letters", now - config.deadLetterRetentionDays * DAY_MS],
  ];
  const deleted: Record<RetainedTable, number> = {
    deliveries: 0,
    messages: 0,
    idempotency_claims: 0,
    topic_counts: 0,
    dead_letters: 0,
  };
  for (const [table, before] of cutoffs) {
    try {
      let count = RETENTION_CHUNK;
      for (let i = 0; i < maxChunksPerTable && count === RETENTION_CHUNK; i++) {
        count = await deleteOlderThan(db, table, before);
        deleted[table] += count;
      }
      if (count === RETENTION_CHUNK) {
        logError("retention.behind", { table, deleted: deleted[table], chunks: maxChunksPerTable });
      }
    } catch (error) {
      logError("retention.failed", { table, error: String(error) });
    }
  }
  logInfo("retention.done", deleted);
  return deleted;
}
