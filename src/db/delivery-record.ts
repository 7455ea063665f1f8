/**
 * The compact record of a message's deliveries, held in its row (`messages.delivery_record`), so
 * that a delivery that succeeds at once costs no row of its own: opening a message's deliveries is
 * part of the write that records its fan-out, and each consumer batch updates a message's record
 * once, whatever the number of its deliveries in the batch. A delivery that needs anything more (a
 * retry, a failure, a cancellation, a replay) moves to a row in `deliveries`, which readers take
 * over the record's entry, unless the entry says delivered.
 *
 * The record is a JSON object from subscriber id to entry:
 * - `0`: pending, opened at `messages.opened_at` and not attempted yet;
 * - `[attempts, lastStatus, lastAttemptAt]`: delivered.
 */
import type { DeliveryState, SubscriberRow } from "./schema";

export type RecordEntry = 0 | [attempts: number, lastStatus: number | null, lastAttemptAt: number];

/**
 * What one entry may take in the record, as delivered (the larger form), with room to spare: a
 * subscriber id (30 characters), three numbers, quotes and punctuation.
 */
const ENTRY_BYTES = 100;
/** What a message row may hold in all, under D1's 2,000,000 bytes per row. */
const ROW_BUDGET_BYTES = 1_900_000;

/** How many entries fit in the row of a message whose stored payload has `payloadChars`. */
export function recordCapacity(payloadChars: number): number {
  return Math.max(0, Math.floor((ROW_BUDGET_BYTES - payloadChars) / ENTRY_BYTES));
}

/** The record of deliveries just opened to `subscriberIds`, as JSON. */
export function pendingRecord(subscriberIds: readonly string[]): string {
  return JSON.stringify(Object.fromEntries(subscriberIds.map((id) => [id, 0])));
}

/** A delivered entry. */
export function deliveredEntry(
  attempts: number,
  lastStatus: number | null,
  lastAttemptAt: number,
): RecordEntry {
  return [attempts, lastStatus, lastAttemptAt];
}

/** A delivery as the record tells it, in the shape of a `deliveries` row's state. */
export interface RecordedDelivery {
  state: DeliveryState;
  attempts: number;
  lastStatus: number | null;
  lastAttemptAt: number | null;
  /** For a pending entry, when it was opened: its first attempt was due then. */
  nextAttemptAt: number | null;
}

/** Reads one entry, given as parsed JSON; undefined for anything that is not an entry. */
export function readEntry(entry: unknown, openedAt: number | null): RecordedDelivery | undefined {
  if (entry === 0) {
    return {
      state: "pending",
      attempts: 0,
      lastStatus: null,
      lastAttemptAt: null,
      nextAttemptAt: openedAt,
    };
  }
  if (!Array.isArray(entry) || entry.length !== 3) return undefined;
  const [attempts, lastStatus, lastAttemptAt] = entry as unknown[];
  if (typeof attempts !== "number" || typeof lastAttemptAt !== "number") return undefined;
  return {
    state: "delivered",
    attempts,
    lastStatus: typeof lastStatus === "number" ? lastStatus : null,
    lastAttemptAt,
    nextAttemptAt: null,
  };
}

/** Every entry of a record (JSON text), by subscriber id; empty when there is none. */
export function readRecord(
  record: string | null,
  openedAt: number | null,
): Map<string, RecordedDelivery> {
  const entries = new Map<string, RecordedDelivery>();
  if (!record) return entries;
  let parsed: unknown;
  try {
    parsed = JSON.parse(record);
  } catch {
    return entries;
  }
  if (typeof parsed !== "object" || parsed === null) return entries;
  for (const [subscriberId, entry] of Object.entries(parsed)) {
    const delivery = readEntry(entry, openedAt);
    if (delivery) entries.set(subscriberId, delivery);
  }
  return entries;
}

/** What of a subscriber decides whether its open deliveries are cancelled. */
export type SubscriberMark = Pick<SubscriberRow, "active" | "deactivatedAt">;

/**
 * Why an open delivery opened at `openedAt` is cancelled, if it is: its subscriber is gone, is
 * inactive, or was made inactive since it opened (a mark that stays when it is made active again,
 * so that its deliveries are not revived). Cancelling is this reading, not a write to each
 * delivery: deactivating a subscriber costs one row whatever the number of its deliveries.
 */
export function cancellation(
  subscriber: SubscriberMark | undefined,
  openedAt: number,
): string | undefined {
  if (!subscriber) return "Subscriber was deleted";
  if (!subscriber.active) return "Subscriber is inactive";
  if (subscriber.deactivatedAt !== null && subscriber.deactivatedAt >= openedAt) {
    return "Subscriber was deactivated after this delivery was opened";
  }
  return undefined;
}
