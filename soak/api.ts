/**
 * The few management calls the soak makes, each answer checked against the schema the API itself
 * uses, so that a wrong shape fails loudly instead of being read as "nothing there".
 */
import type { z } from "@hono/zod-openapi";
import { type DeadLetter, DeadLetterList, Replayed } from "../src/api/schemas/dead-letters";
import { MessageStatus } from "../src/api/schemas/messages";
import { SubscriberWithSecret } from "../src/api/schemas/subscribers";
import type { BrokerRequestInit, LocalBroker } from "../test/node/broker";
import type { SubscriberPlan } from "./plan";

/** Far more pages than a soak's dead letters fill; a cursor that never ends is a bug. */
const MAX_PAGES = 10_000;

async function call<T extends z.ZodType>(
  broker: LocalBroker,
  path: string,
  init: BrokerRequestInit,
  status: number,
  schema: T,
): Promise<z.infer<T>> {
  const res = await broker.request(path, init);
  const text = await res.text();
  if (res.status !== status) {
    throw new Error(
      `${init.method ?? "GET"} ${path}: HTTP ${res.status}, expected ${status}: ${text.slice(0, 500)}`,
    );
  }
  const parsed = schema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${path}: unexpected answer ${text.slice(0, 500)}`);
  return parsed.data;
}

export async function createTopic(broker: LocalBroker, name: string): Promise<void> {
  const res = await broker.request("/v1/topics", { json: { name } });
  if (res.status !== 201)
    throw new Error(`creating topic ${name}: HTTP ${res.status} ${await res.text()}`);
  await res.body?.cancel();
}

/** Creates the subscriber at `origin`; returns its id and signing secret. */
export async function createSubscriber(
  broker: LocalBroker,
  plan: SubscriberPlan,
  origin: string,
): Promise<{ id: string; secret: string }> {
  const created = await call(
    broker,
    `/v1/topics/${encodeURIComponent(plan.topic)}/subscribers`,
    {
      json: {
        url: origin + plan.path,
        ...(plan.filter === undefined ? {} : { filter: plan.filter }),
        headers: { "x-subscriber": plan.name },
        query: { sub: plan.name },
        timeoutMs: plan.timeoutMs,
        retry: plan.retry,
        description: `soak: ${plan.behaviour}`,
      },
    },
    201,
    SubscriberWithSecret,
  );
  return { id: created.id, secret: created.secret };
}

/**
 * Every dead letter, optionally of one subscriber, following `nextCursor` to the end. Small pages
 * make even a small soak follow cursors.
 */
export async function listDeadLetters(
  broker: LocalBroker,
  options: { subscriberId?: string; pageSize?: number } = {},
): Promise<DeadLetter[]> {
  const all: DeadLetter[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < MAX_PAGES; page++) {
    const query = new URLSearchParams({ limit: String(options.pageSize ?? 200) });
    if (options.subscriberId) query.set("subscriberId", options.subscriberId);
    if (cursor) query.set("cursor", cursor);
    const list = await call(broker, `/v1/dead-letters?${query}`, {}, 200, DeadLetterList);
    all.push(...list.deadLetters);
    cursor = list.nextCursor;
    if (cursor === null) return all;
  }
  throw new Error(`the dead letters did not end after ${MAX_PAGES} pages`);
}

/** A bulk replay replays at most this many per call; more means calling again. */
const MAX_REPLAYS_PER_CALL = 5000;

/** Replays every dead letter of the subscriber; returns how many were replayed. */
export async function replayDeadLetters(
  broker: LocalBroker,
  subscriberId: string,
): Promise<number> {
  let total = 0;
  for (let round = 0; round < MAX_PAGES; round++) {
    const { replayed } = await call(
      broker,
      "/v1/dead-letters/replay",
      { json: { subscriberId } },
      202,
      Replayed,
    );
    total += replayed;
    if (replayed < MAX_REPLAYS_PER_CALL) return total;
  }
  throw new Error(`the replay of ${subscriberId} did not end`);
}

export function messageStatus(broker: LocalBroker, id: string): Promise<MessageStatus> {
  return call(broker, `/v1/messages/${encodeURIComponent(id)}`, {}, 200, MessageStatus);
}
