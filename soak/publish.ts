/**
 * Publishes the planned calls at a fixed concurrency with the publish token, and keeps what the
 * checks need: each accepted message's id, when its call was sent, and each call's latency.
 */
import { PublishBatchResult, PublishResult } from "../src/api/schemas/messages";
import type { LocalBroker } from "../test/node/broker";
import type { PlannedMessage, PublishUnit } from "./plan";
import { runPool } from "./util";

export interface Published {
  message: PlannedMessage;
  id: string;
  /** When the call that carried it was sent. */
  sentAt: number;
}

export interface PublishReport {
  /** By message id. */
  published: Map<string, Published>;
  /** Milliseconds per publish call, single or batch. */
  callLatenciesMs: number[];
  /** Messages whose call was not answered 202, with the reason. */
  rejected: { seq: number; reason: string }[];
  startedAt: number;
  finishedAt: number;
}

export async function publishAll(
  broker: LocalBroker,
  units: readonly PublishUnit[],
  concurrency: number,
  signal?: AbortSignal,
): Promise<PublishReport> {
  const report: PublishReport = {
    published: new Map(),
    callLatenciesMs: [],
    rejected: [],
    startedAt: Date.now(),
    finishedAt: 0,
  };
  await runPool(units, concurrency, (unit) => publishUnit(broker, unit, report), signal);
  report.finishedAt = Date.now();
  return report;
}

async function publishUnit(broker: LocalBroker, unit: PublishUnit, report: PublishReport) {
  const topic = encodeURIComponent(unit.topic);
  const sentAt = Date.now();
  const reject = (reason: string) => {
    for (const message of unit.messages) report.rejected.push({ seq: message.seq, reason });
  };
  let status: number;
  let text: string;
  try {
    const res = unit.batch
      ? await broker.request(`/v1/topics/${topic}/messages/batch`, {
          token: broker.publishToken,
          json: { messages: unit.messages.map((message) => message.envelope) },
        })
      : await broker.request(`/v1/topics/${topic}/messages`, {
          token: broker.publishToken,
          json: unit.messages[0]?.envelope,
        });
    status = res.status;
    text = await res.text();
  } catch (error) {
    return reject(`no answer: ${error instanceof Error ? error.message : String(error)}`);
  }
  report.callLatenciesMs.push(Date.now() - sentAt);
  if (status !== 202) return reject(`HTTP ${status}: ${text.slice(0, 300)}`);

  const ids = acceptedIds(unit, text);
  if (typeof ids === "string") return reject(ids);
  unit.messages.forEach((message, index) => {
    const id = ids[index];
    if (id !== undefined) report.published.set(id, { message, id, sentAt });
  });
}

/** The ids of a 202 answer in the order of the call's messages, or why the answer is wrong. */
function acceptedIds(unit: PublishUnit, text: string): string[] | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return `202 without JSON: ${text.slice(0, 300)}`;
  }
  if (!unit.batch) {
    const single = PublishResult.safeParse(json);
    if (!single.success) return `202 with an unexpected body: ${text.slice(0, 300)}`;
    if (single.data.duplicate || single.data.topic !== unit.topic) {
      return `202 naming the wrong topic or a duplicate: ${text.slice(0, 300)}`;
    }
    return [single.data.id];
  }
  const batch = PublishBatchResult.safeParse(json);
  if (!batch.success || batch.data.messages.length !== unit.messages.length) {
    return `202 with an unexpected body: ${text.slice(0, 300)}`;
  }
  if (batch.data.messages.some((entry) => entry.duplicate)) {
    return `202 reporting a duplicate without an idempotency key: ${text.slice(0, 300)}`;
  }
  return batch.data.messages.map((entry) => entry.id);
}
