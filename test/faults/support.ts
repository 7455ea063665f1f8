/**
 * Faults the pipeline doubles in test/pipeline/support.ts do not make: a D1 binding that throws
 * (synchronously, and not necessarily an Error) instead of rejecting, a subscriber that never
 * answers until the attempt's signal aborts it, and the few lookups every fault test repeats.
 *
 * @example
 * const db = throwingBatches((index) => index >= 1, () => new TypeError("boom"));
 * await deliver(tasks, answering(200).fetch, { db });
 */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { type DeadLetter, DeadLetterList } from "../../src/api/schemas/dead-letters";
import type { Delivery } from "../../src/api/schemas/messages";
import { call, expectJson } from "../harness";
import { type FetchStub, messageStatus, stubFetch } from "../pipeline/support";

/**
 * The real database, except that the `batch` calls `fails` picks (by their 0-based order) throw
 * `thrown()` at once, the way a bug or a broken binding would, rather than rejecting.
 */
export function throwingBatches(
  fails: (index: number) => boolean,
  thrown: () => unknown,
  db: D1Database = env.DB,
): D1Database {
  let index = 0;
  return new Proxy(db, {
    get(target, property) {
      if (property === "batch") {
        return (statements: D1PreparedStatement[]) => {
          const current = index++;
          if (fails(current)) throw thrown();
          return target.batch(statements);
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** A subscriber that accepts the connection and never answers; only the attempt's signal ends it. */
export function hangingFetch(): FetchStub {
  return stubFetch(
    (_request, signal) =>
      new Promise<Response>((_resolve, reject) => {
        if (signal?.aborted) reject(signal.reason);
        signal?.addEventListener("abort", () => reject(signal.reason));
      }),
  );
}

export { oneDelivery } from "../pipeline/support";

/** The one delivery of a message, as `GET /v1/messages/{id}` shows it. */
export async function deliveryOf(messageId: string, subscriberId?: string): Promise<Delivery> {
  const { deliveries } = await messageStatus(messageId);
  const delivery =
    subscriberId === undefined
      ? deliveries[0]
      : deliveries.find((candidate) => candidate.subscriberId === subscriberId);
  if (!delivery) throw new Error(`message ${messageId} has no such delivery`);
  return delivery;
}

/** The dead letters of a subscriber, as the API lists them. */
export async function deadLettersOf(subscriberId: string): Promise<DeadLetter[]> {
  const res = await call("GET", `/v1/dead-letters?subscriberId=${subscriberId}&limit=200`);
  return (await expectJson(res, 200, DeadLetterList)).deadLetters;
}

/** Milliseconds since `start`; for checking that a fault did not hold a consumer up. */
export function elapsedSince(start: number): number {
  return Date.now() - start;
}

/** The delay a retry asked for, failing the test if the message was not retried. */
export function retryDelay(
  outcome: { kind: "ack" } | { kind: "retry"; delaySeconds: number | undefined } | undefined,
): number {
  expect(outcome?.kind).toBe("retry");
  return outcome?.kind === "retry" ? (outcome.delaySeconds ?? -1) : -1;
}
