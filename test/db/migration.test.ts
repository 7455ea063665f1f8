/**
 * The upgrade to the compact delivery record (migrations/0003): a database made by the earlier
 * migrations, holding messages, deliveries in every state, idempotency keys and dead letters, is
 * migrated, and then every GET answers as before, a repeated publish with an old key is still a
 * duplicate, open deliveries complete from tasks in the earlier format, and dead letters replay.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { DeadLetterList } from "../../src/api/schemas/dead-letters";
import { newId } from "../../src/db/ids";
import { call, expectJson } from "../harness";
import {
  answering,
  consumeDeadLetters,
  deliver,
  fanOut,
  messageStatus,
  recordingQueue,
} from "../pipeline/support";

const now = Date.now();
const minutesAgo = (minutes: number) => now - minutes * 60_000;
const TOPIC = "legacy";
const CONTENT = {
  body: { kind: "json", value: { n: 1 }, contentType: "application/json" },
  headers: {},
  query: {},
  pathParams: {},
  method: null,
};

const active = newId("sub", minutesAgo(300));
const inactive = newId("sub", minutesAgo(299));
/** Fanned out to both subscribers: one delivery delivered, one cancelled when it was deactivated. */
const settled = newId("msg", minutesAgo(60));
/** Fanned out, its delivery waiting for a retry. */
const retrying = newId("msg", minutesAgo(50));
/** Fanned out, its delivery not attempted yet. */
const pending = newId("msg", minutesAgo(40));
/** Dead, with a dead letter; its content was stored (a large message). */
const dead = newId("msg", minutesAgo(30));
/** Published with a key and not fanned out yet. */
const queued = newId("msg", minutesAgo(20));
const deadLetter = newId("dlq", minutesAgo(29));

/** The rows as the earlier schema held them, one statement each. */
const FIXTURE = [
  `insert into topics (name, description, created_at) values ('${TOPIC}', 'from before', ${minutesAgo(400)})`,
  ...[
    [active, 1, "whsec_YWN0aXZl"],
    [inactive, 0, "whsec_aW5hY3RpdmU="],
  ].map(
    ([id, isActive, secret]) =>
      `insert into subscribers (id, topic, url, filter, method, headers, query, timeout_ms,
        max_attempts, base_delay_seconds, max_delay_seconds, active, description, secret, version,
        created_at, updated_at)
      values ('${id}', '${TOPIC}', 'https://hooks.example.com/${id}', null, 'POST', '{}', '{}',
        15000, 5, 5, 60, ${isActive}, null, '${secret}', 1, ${minutesAgo(300)}, ${minutesAgo(45)})`,
  ),
  ...[
    [settled, "dispatched", 2, "null", minutesAgo(60)],
    [retrying, "dispatched", 1, "null", minutesAgo(50)],
    [pending, "dispatched", 1, "null", minutesAgo(40)],
    [dead, "dispatched", 1, `'${JSON.stringify(CONTENT)}'`, minutesAgo(30)],
    [queued, "queued", "null", "null", minutesAgo(20)],
  ].map(
    ([id, state, matched, payload, at]) =>
      `insert into messages (id, topic, state, matched, filtered, payload, published_at, available_at)
      values ('${id}', '${TOPIC}', '${state}', ${matched}, ${matched === "null" ? "null" : 0}, ${payload}, ${at}, ${at})`,
  ),
  `insert into idempotency_keys (topic, key, message_id, payload_hash, created_at)
    values ('${TOPIC}', 'order-7', '${queued}', 'hash-of-order-7', ${minutesAgo(20)})`,
  ...[
    [settled, active, "delivered", 1, 200, "null", minutesAgo(59), "null"],
    [settled, inactive, "cancelled", 0, "null", "null", "null", "null"],
    [retrying, active, "retrying", 2, 503, "'HTTP 503'", minutesAgo(49), minutesAgo(-10)],
    [pending, active, "pending", 0, "null", "null", "null", minutesAgo(40)],
    [dead, active, "dead", 5, 500, "'HTTP 500'", minutesAgo(29), "null"],
  ].map(
    ([message, subscriber, state, attempts, status, error, attemptAt, next]) =>
      `insert into deliveries (message_id, subscriber_id, state, attempts, last_status, last_error,
        last_attempt_at, next_attempt_at, created_at)
      values ('${message}', '${subscriber}', '${state}', ${attempts}, ${status}, ${error},
        ${attemptAt}, ${next}, ${minutesAgo(61)})`,
  ),
  `insert into dead_letters (id, message_id, topic, subscriber_id, attempts, last_status, last_error,
    published_at, payload, dead_at)
    values ('${deadLetter}', '${dead}', '${TOPIC}', '${active}', 5, 500, 'HTTP 500',
      ${minutesAgo(30)}, '${JSON.stringify(CONTENT)}', ${minutesAgo(29)})`,
];

beforeAll(async () => {
  // This file's database starts migrated to the latest version: take it back to before 0003, by
  // dropping every table the migrations made and running the earlier ones again.
  const { results } = await env.DB.prepare(
    "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like '_cf_%' and name <> 'd1_migrations'",
  ).all<{ name: string }>();
  await env.DB.batch(results.map(({ name }) => env.DB.prepare(`drop table "${name}"`)));
  const migrations = env.TEST_MIGRATIONS;
  const upgrade = migrations.findIndex((migration) => migration.name.startsWith("0003_"));
  expect(upgrade).toBeGreaterThan(0);
  for (const migration of migrations.slice(0, upgrade)) await run(migration.queries);
  await run(FIXTURE);
  await run(migrations[upgrade]?.queries ?? []);
});

async function run(queries: readonly string[]): Promise<void> {
  for (const query of queries) await env.DB.prepare(query).run();
}

const iso = (ms: number) => new Date(ms).toISOString();

describe("a database from before the compact record, migrated", () => {
  it("answers every message's status as before", async () => {
    expect(await messageStatus(settled)).toMatchObject({
      state: "dispatched",
      matched: 2,
      deliveries: [
        {
          subscriberId: active,
          state: "delivered",
          attempts: 1,
          lastStatus: 200,
          lastAttemptAt: iso(minutesAgo(59)),
        },
        { subscriberId: inactive, state: "cancelled", attempts: 0, nextAttemptAt: null },
      ],
    });
    expect((await messageStatus(retrying)).deliveries).toEqual([
      {
        subscriberId: active,
        state: "retrying",
        attempts: 2,
        lastStatus: 503,
        lastError: "HTTP 503",
        lastAttemptAt: iso(minutesAgo(49)),
        nextAttemptAt: iso(minutesAgo(-10)),
      },
    ]);
    expect((await messageStatus(pending)).deliveries).toMatchObject([
      { subscriberId: active, state: "pending", attempts: 0 },
    ]);
    expect((await messageStatus(dead)).deliveries).toMatchObject([
      { subscriberId: active, state: "dead", attempts: 5, lastError: "HTTP 500" },
    ]);
    expect(await messageStatus(queued)).toMatchObject({
      state: "queued",
      matched: null,
      deliveries: [],
    });
  });

  it("keeps the subscribers as they were, an inactive one marked as deactivated", async () => {
    const rows = await env.DB.prepare(
      "select id, active, deactivated_at as deactivatedAt from subscribers order by id",
    ).all();
    expect(rows.results).toEqual([
      { id: active, active: 1, deactivatedAt: null },
      { id: inactive, active: 0, deactivatedAt: minutesAgo(45) },
    ]);
  });

  it("still answers a repeated publish with a key claimed before the upgrade", async () => {
    const row = await env.DB.prepare(
      "select idempotency_key as key, payload_hash as hash from messages where id = ?",
    )
      .bind(queued)
      .first();
    expect(row).toEqual({ key: "order-7", hash: "hash-of-order-7" });
    // A different payload under the same key is a conflict: the key still belongs to `queued`.
    const res = await call("POST", `/v1/topics/${TOPIC}/messages`, {
      json: { body: { other: true } },
      headers: { "idempotency-key": "order-7" },
      env: { FANOUT_QUEUE: recordingQueue().queue },
    });
    expect(res.status).toBe(409);
  });

  it("fans out a message queued before the upgrade from a task in the earlier format", async () => {
    const { tasks } = await fanOut([
      { messageId: queued, topic: TOPIC, publishedAt: minutesAgo(20), content: CONTENT },
    ]);
    expect(tasks.map((task) => task.subscriberId)).toEqual([active]);
    const fetch = answering(200);
    await deliver(tasks, fetch.fetch);
    expect(await messageStatus(queued)).toMatchObject({
      state: "dispatched",
      matched: 1,
      deliveries: [{ subscriberId: active, state: "delivered", attempts: 1, lastStatus: 200 }],
    });
  });

  it("completes open deliveries from tasks in the earlier format", async () => {
    const fetch = answering(200);
    const earlier = (messageId: string, publishedAt: number) => ({
      messageId,
      subscriberId: active,
      topic: TOPIC,
      publishedAt,
      content: CONTENT,
    });
    await deliver(
      [earlier(retrying, minutesAgo(50)), earlier(pending, minutesAgo(40))],
      fetch.fetch,
      {
        attempts: [3, 1],
      },
    );
    expect(fetch.requests).toHaveLength(2);
    expect((await messageStatus(retrying)).deliveries).toMatchObject([
      { subscriberId: active, state: "delivered", attempts: 3, lastStatus: 200, lastError: null },
    ]);
    expect((await messageStatus(pending)).deliveries).toMatchObject([
      { subscriberId: active, state: "delivered", attempts: 1, lastStatus: 200 },
    ]);
  });

  it("lists and replays a dead letter recorded before the upgrade", async () => {
    const list = await expectJson(
      await call("GET", `/v1/dead-letters?topic=${TOPIC}`),
      200,
      DeadLetterList,
    );
    expect(list.deadLetters.map((letter) => letter.id)).toEqual([deadLetter]);
    const queue = recordingQueue();
    const res = await call("POST", `/v1/dead-letters/${deadLetter}/replay`, {
      env: { DELIVERY_QUEUE: queue.queue },
    });
    expect(res.status).toBe(202);
    expect((await messageStatus(dead)).deliveries).toMatchObject([
      { subscriberId: active, state: "pending", attempts: 0 },
    ]);
    await deliver(queue.bodies(), answering(200).fetch);
    expect((await messageStatus(dead)).deliveries).toMatchObject([
      { subscriberId: active, state: "delivered", attempts: 1 },
    ]);
  });

  it("records a dead record in the earlier format, which carries its content as JSON text", async () => {
    await consumeDeadLetters([
      {
        kind: "dead",
        messageId: settled,
        subscriberId: inactive,
        topic: TOPIC,
        publishedAt: minutesAgo(60),
        attempts: 1,
        lastStatus: 500,
        lastError: "HTTP 500",
        lastAttemptAt: minutesAgo(58),
        payload: JSON.stringify(CONTENT),
        gone: false,
      },
    ]);
    // The delivery was cancelled before: a late record does not reopen it or leave a dead letter.
    const list = await expectJson(
      await call("GET", `/v1/dead-letters?subscriberId=${inactive}`),
      200,
      DeadLetterList,
    );
    expect(list.deadLetters).toEqual([]);
  });
});
