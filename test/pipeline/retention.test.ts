/**
 * Retention: messages, deliveries and idempotency keys go after RETENTION_DAYS, dead letters after
 * DEAD_LETTER_RETENTION_DAYS; newer rows stay.
 */
import {
  createExecutionContext,
  createScheduledController,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RETENTION_CHUNK } from "../../src/db/retention";
import worker from "../../src/index";
import { runRetention } from "../../src/retention/scheduled";
import { countingD1, envWith } from "./support";

const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const TABLES = ["messages", "deliveries", "idempotency_keys", "dead_letters"] as const;

beforeEach(async () => {
  vi.spyOn(console, "log").mockImplementation(() => undefined);
  vi.spyOn(console, "error").mockImplementation(() => undefined);
  await env.DB.batch(TABLES.map((table) => env.DB.prepare(`delete from ${table}`)));
});

afterEach(() => {
  vi.restoreAllMocks();
});

/** One row in each table, `ageDays` old (dead letters `deadLetterAgeDays` old). */
async function seedRows(id: string, ageDays: number, deadLetterAgeDays = ageDays): Promise<void> {
  const at = NOW - ageDays * DAY;
  const deadAt = NOW - deadLetterAgeDays * DAY;
  await env.DB.batch([
    env.DB.prepare(
      "insert into messages (id, topic, state, published_at) values (?, 't', 'dispatched', ?)",
    ).bind(id, at),
    env.DB.prepare(
      "insert into deliveries (message_id, subscriber_id, state, attempts, created_at) values (?, 'sub_1', 'delivered', 1, ?)",
    ).bind(id, at),
    env.DB.prepare(
      "insert into idempotency_keys (topic, key, message_id, payload_hash, created_at) values ('t', ?, ?, 'h', ?)",
    ).bind(`key-${id}`, id, at),
    env.DB.prepare(
      "insert into dead_letters (id, message_id, topic, subscriber_id, attempts, published_at, dead_at) values (?, ?, 't', 'sub_1', 1, ?, ?)",
    ).bind(`dlq-${id}`, id, at, deadAt),
  ]);
}

async function idsIn(table: (typeof TABLES)[number]): Promise<string[]> {
  const column = {
    messages: "id",
    deliveries: "message_id",
    idempotency_keys: "message_id",
    dead_letters: "message_id",
  }[table];
  const { results } = await env.DB.prepare(`select ${column} as id from ${table} order by 1`).all<{
    id: string;
  }>();
  return results.map((row) => row.id);
}

describe("runRetention", () => {
  it("deletes rows older than the retention periods and keeps newer ones", async () => {
    await seedRows("old", 8, 15);
    await seedRows("recent", 6, 13);
    const deleted = await runRetention(env, NOW);
    expect(deleted).toEqual({ messages: 1, deliveries: 1, idempotency_keys: 1, dead_letters: 1 });
    for (const table of ["messages", "deliveries", "idempotency_keys"] as const) {
      expect(await idsIn(table)).toEqual(["recent"]);
    }
    expect(await idsIn("dead_letters")).toEqual(["recent"]);
  });

  it("keeps dead letters longer than messages", async () => {
    await seedRows("m", 8, 8);
    await runRetention(env, NOW);
    expect(await idsIn("messages")).toEqual([]);
    expect(await idsIn("dead_letters")).toEqual(["m"]);
  });

  it("keeps a row exactly at the cutoff", async () => {
    await seedRows("edge", 7, 14);
    expect(await runRetention(env, NOW)).toEqual({
      messages: 0,
      deliveries: 0,
      idempotency_keys: 0,
      dead_letters: 0,
    });
  });

  it("follows RETENTION_DAYS and DEAD_LETTER_RETENTION_DAYS", async () => {
    await seedRows("two-days", 2, 3);
    await runRetention(envWith({ RETENTION_DAYS: "1", DEAD_LETTER_RETENTION_DAYS: "2" }), NOW);
    for (const table of TABLES) expect(await idsIn(table)).toEqual([]);
  });

  it("deletes more than one chunk in a run", async () => {
    const count = RETENTION_CHUNK + 500;
    await env.DB.prepare(
      `insert into messages (id, topic, state, published_at)
       with recursive n(i) as (select 1 union all select i + 1 from n where i < ?)
       select 'bulk-' || i, 't', 'dispatched', ? from n`,
    )
      .bind(count, NOW - 30 * DAY)
      .run();
    const deleted = await runRetention(env, NOW);
    expect(deleted.messages).toBe(count);
    expect(await idsIn("messages")).toEqual([]);
  });

  it("stops at its cap of chunks and says the table is behind", async () => {
    await env.DB.prepare(
      `insert into messages (id, topic, state, published_at)
       with recursive n(i) as (select 1 union all select i + 1 from n where i < ?)
       select 'bulk-' || i, 't', 'dispatched', ? from n`,
    )
      .bind(2 * RETENTION_CHUNK + 1, NOW - 30 * DAY)
      .run();
    const errors = vi.spyOn(console, "error");
    expect((await runRetention(env, NOW, 2)).messages).toBe(2 * RETENTION_CHUNK);
    expect(errors.mock.calls.map(([line]) => JSON.parse(String(line)))).toEqual([
      { level: "error", event: "retention.behind", table: "messages", deleted: 2000, chunks: 2 },
    ]);
    // The next run takes the rest, and a run that finishes says nothing.
    errors.mockClear();
    expect((await runRetention(env, NOW, 2)).messages).toBe(1);
    expect(errors).not.toHaveBeenCalled();
  });

  it("does not throw when D1 fails", async () => {
    const broken = countingD1(env.DB, () => true);
    await expect(runRetention(envWith({ DB: broken.db }), NOW)).resolves.toEqual({
      messages: 0,
      deliveries: 0,
      idempotency_keys: 0,
      dead_letters: 0,
    });
  });

  it("runs from the Worker's scheduled handler", async () => {
    await seedRows("cron", 30, 30);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime: NOW }), env, ctx);
    await waitOnExecutionContext(ctx);
    for (const table of TABLES) expect(await idsIn(table)).toEqual([]);
  });
});
