/**
 * Retention: messages and deliveries go after RETENTION_DAYS, by the time in their message's id
 * (made when it was published); dead letters after DEAD_LETTER_RETENTION_DAYS; newer rows stay.
 */
import {
  createExecutionContext,
  createScheduledController,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { newId } from "../../src/db/ids";
import { RETENTION_CHUNK } from "../../src/db/retention";
import worker from "../../src/index";
import { runRetention } from "../../src/retention/scheduled";
import { countingD1, envWith } from "./support";

const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const TABLES = ["messages", "deliveries", "dead_letters"] as const;

beforeEach(async () => {
  vi.spyOn(console, "log").mockImplementation(() => undefined);
  vi.spyOn(console, "error").mockImplementation(() => undefined);
  await env.DB.batch(TABLES.map((table) => env.DB.prepare(`delete from ${table}`)));
});

afterEach(() => {
  vi.restoreAllMocks();
});

/**
 * A message published `ageDays` ago (its id made then) with a delivery row, and a dead letter
 * `deadLetterAgeDays` old; returns the message's id.
 */
async function seedRows(ageDays: number, deadLetterAgeDays = ageDays): Promise<string> {
  const at = NOW - ageDays * DAY;
  const deadAt = NOW - deadLetterAgeDays * DAY;
  const id = newId("msg", at);
  await env.DB.batch([
    env.DB.prepare(
      "insert into messages (id, topic, state, published_at) values (?, 't', 'dispatched', ?)",
    ).bind(id, at),
    env.DB.prepare(
      "insert into deliveries (message_id, subscriber_id, state, attempts, created_at) values (?, 'sub_1', 'delivered', 1, ?)",
    ).bind(id, at),
    env.DB.prepare(
      "insert into dead_letters (id, message_id, topic, subscriber_id, attempts, published_at, dead_at) values (?, ?, 't', 'sub_1', 1, ?, ?)",
    ).bind(newId("dlq", deadAt), id, at, deadAt),
  ]);
  return id;
}

/**
 * Inserts `count` messages whose ids were made `ageDays` ago: the ids share that time and differ
 * in their last characters, as ids made in one millisecond do.
 */
async function seedBulk(count: number, ageDays: number): Promise<void> {
  const at = NOW - ageDays * DAY;
  const timePart = newId("msg", at).slice(0, "msg_".length + 10);
  await env.DB.prepare(
    `insert into messages (id, topic, state, published_at)
     with recursive n(i) as (select 1 union all select i + 1 from n where i < ?)
     select ? || printf('%016d', i), 't', 'dispatched', ? from n`,
  )
    .bind(count, timePart, at)
    .run();
}

async function idsIn(table: (typeof TABLES)[number]): Promise<string[]> {
  const column = {
    messages: "id",
    deliveries: "message_id",
    dead_letters: "message_id",
  }[table];
  const { results } = await env.DB.prepare(`select ${column} as id from ${table} order by 1`).all<{
    id: string;
  }>();
  return results.map((row) => row.id);
}

describe("runRetention", () => {
  it("deletes rows older than the retention periods and keeps newer ones", async () => {
    await seedRows(8, 15);
    const recent = await seedRows(6, 13);
    const deleted = await runRetention(env, NOW);
    expect(deleted).toMatchObject({ messages: 1, deliveries: 1, dead_letters: 1 });
    for (const table of TABLES) expect(await idsIn(table)).toEqual([recent]);
  });

  it("deletes a finished delivery with its old message, however recently it was opened", async () => {
    // A replay reopens a delivery of an old message; once it is finished it goes with its message.
    const id = await seedRows(8, 1);
    await env.DB.prepare("update deliveries set created_at = ? where message_id = ?")
      .bind(NOW - DAY, id)
      .run();
    expect(await runRetention(env, NOW)).toMatchObject({
      messages: 1,
      deliveries: 1,
      dead_letters: 0,
    });
    expect(await idsIn("deliveries")).toEqual([]);
  });

  it("keeps dead letters longer than messages", async () => {
    const id = await seedRows(8, 8);
    await runRetention(env, NOW);
    expect(await idsIn("messages")).toEqual([]);
    expect(await idsIn("dead_letters")).toEqual([id]);
  });

  it("keeps a row exactly at the cutoff", async () => {
    await seedRows(7, 14);
    const deleted = await runRetention(env, NOW);
    expect(deleted).toMatchObject({ messages: 0, deliveries: 0, dead_letters: 0 });
    expect(new Set(Object.values(deleted))).toEqual(new Set([0]));
  });

  it("deletes a row a millisecond past the cutoff", async () => {
    const at = NOW - 7 * DAY - 1;
    await env.DB.prepare(
      "insert into messages (id, topic, state, published_at) values (?, 't', 'dispatched', ?)",
    )
      .bind(newId("msg", at), at)
      .run();
    expect((await runRetention(env, NOW)).messages).toBe(1);
  });

  it("follows RETENTION_DAYS and DEAD_LETTER_RETENTION_DAYS", async () => {
    await seedRows(2, 3);
    await runRetention(envWith({ RETENTION_DAYS: "1", DEAD_LETTER_RETENTION_DAYS: "2" }), NOW);
    for (const table of TABLES) expect(await idsIn(table)).toEqual([]);
  });

  it("deletes more than one chunk in a run", async () => {
    const count = RETENTION_CHUNK + 500;
    await seedBulk(count, 30);
    const deleted = await runRetention(env, NOW);
    expect(deleted.messages).toBe(count);
    expect(await idsIn("messages")).toEqual([]);
  });

  it("stops at its cap of chunks and says the table is behind", async () => {
    await seedBulk(2 * RETENTION_CHUNK + 1, 30);
    const errors = vi.spyOn(console, "error");
    expect((await runRetention(env, NOW, 2)).messages).toBe(2 * RETENTION_CHUNK);
    expect(errors.mock.calls.map(([line]) => JSON.parse(String(line)))).toEqual([
      {
        level: "error",
        event: "retention.behind",
        table: "messages",
        deleted: 2 * RETENTION_CHUNK,
        chunks: 2,
      },
    ]);
    // The next run takes the rest, and a run that finishes says nothing.
    errors.mockClear();
    expect((await runRetention(env, NOW, 2)).messages).toBe(1);
    expect(errors).not.toHaveBeenCalled();
  });

  it("does not throw when D1 fails", async () => {
    const broken = countingD1(env.DB, () => true);
    const deleted = await runRetention(envWith({ DB: broken.db }), NOW);
    expect(deleted).toMatchObject({ messages: 0, deliveries: 0, dead_letters: 0 });
    expect(new Set(Object.values(deleted))).toEqual(new Set([0]));
  });

  it("runs from the Worker's scheduled handler", async () => {
    await seedRows(30, 30);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime: NOW }), env, ctx);
    await waitOnExecutionContext(ctx);
    for (const table of TABLES) expect(await idsIn(table)).toEqual([]);
  });
});
