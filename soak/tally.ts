/**
 * Turns what the endpoints recorded into the soak's figures: which (message, subscriber) pairs
 * were expected, delivered, duplicated, misrouted or delivered wrong.
 */
import { contentProblems } from "./content";
import type { Endpoint, ReceivedAttempt } from "./endpoint";
import type { SubscriberPlan } from "./plan";
import type { Published } from "./publish";

/** A planned subscriber as it runs: its id at the broker and its endpoint. */
export interface Wired {
  plan: SubscriberPlan;
  id: string;
  endpoint: Endpoint;
}

/** Message ids each subscriber must receive, by subscriber id. */
export function expectedPairs(
  wired: readonly Wired[],
  published: ReadonlyMap<string, Published>,
): Map<string, Set<string>> {
  const expected = new Map<string, Set<string>>();
  for (const { plan, id } of wired) {
    const ids = new Set<string>();
    for (const [messageId, { message }] of published) {
      if (message.topic === plan.topic && plan.matches(message)) ids.add(messageId);
    }
    expected.set(id, ids);
  }
  return expected;
}

/** Message ids the subscriber's endpoint accepted at least once. */
export function acceptedIds(endpoint: Endpoint): Set<string> {
  const ids = new Set<string>();
  for (const attempt of endpoint.attempts) {
    if (attempt.outcome === "accepted") ids.add(attempt.webhookId);
  }
  return ids;
}

export interface Tally {
  expected: number;
  /** Expected pairs accepted at least once. */
  delivered: number;
  /** Accepted requests beyond the first per pair. */
  duplicates: number;
  lost: number;
  /** Requests for a message the subscriber does not match, or for no published message. */
  misrouted: number;
  /** Requests whose signature, body, headers, query, path or method were wrong. */
  wrong: number;
  /** Requests the endpoints saw, every attempt counted. */
  requests: number;
  /** Publish-to-delivery milliseconds of pairs delivered before any replay. */
  latenciesMs: number[];
  /** When the last pair delivered before any replay arrived. */
  lastFirstDeliveryAt: number;
  problems: string[];
  /** How some duplicates came about: at-least-once delivery allows them, so they are not problems. */
  duplicateNotes: string[];
}

const MAX_PROBLEMS_PER_KIND = 5;

export function tally(
  wired: readonly Wired[],
  published: ReadonlyMap<string, Published>,
  replayStartedAt: number,
): Tally {
  const expected = expectedPairs(wired, published);
  const result: Tally = {
    expected: 0,
    delivered: 0,
    duplicates: 0,
    lost: 0,
    misrouted: 0,
    wrong: 0,
    requests: 0,
    latenciesMs: [],
    lastFirstDeliveryAt: 0,
    problems: [],
    duplicateNotes: [],
  };
  const samples = new Map<string, number>();
  const note = (kind: string, text: string) => {
    const seen = samples.get(kind) ?? 0;
    samples.set(kind, seen + 1);
    if (seen < MAX_PROBLEMS_PER_KIND) result.problems.push(`${kind}: ${text}`);
  };

  for (const { plan, id, endpoint } of wired) {
    const mine = expected.get(id) ?? new Set<string>();
    result.expected += mine.size;
    const accepted = new Map<string, ReceivedAttempt>();
    for (const attempt of endpoint.attempts) {
      result.requests += 1;
      const entry = published.get(attempt.webhookId);
      const where = `${plan.name} ${attempt.webhookId || "(no webhook-id)"}`;
      if (!entry || !mine.has(attempt.webhookId)) {
        result.misrouted += 1;
        note(
          "misrouted",
          entry
            ? `${where} (message #${entry.message.seq} does not match)`
            : `${where} (not a published message)`,
        );
        continue;
      }
      const problems = contentProblems(attempt, attempt.webhookId, entry.message, plan);
      if (attempt.signatureProblem) problems.unshift(attempt.signatureProblem);
      if (problems.length > 0) {
        result.wrong += 1;
        note("wrong request", `${where} (message #${entry.message.seq}): ${problems.join("; ")}`);
      }
      if (attempt.outcome !== "accepted") continue;
      const first = accepted.get(attempt.webhookId);
      if (first) {
        result.duplicates += 1;
        if (result.duplicateNotes.length < MAX_PROBLEMS_PER_KIND) {
          result.duplicateNotes.push(
            `duplicate: ${where} (message #${entry.message.seq}): ${history(endpoint, attempt.webhookId, first.receivedAt)}`,
          );
        }
        continue;
      }
      accepted.set(attempt.webhookId, attempt);
      if (attempt.receivedAt < replayStartedAt) {
        result.latenciesMs.push(attempt.receivedAt - entry.sentAt);
        result.lastFirstDeliveryAt = Math.max(result.lastFirstDeliveryAt, attempt.receivedAt);
      }
    }
    for (const messageId of mine) {
      if (accepted.has(messageId)) result.delivered += 1;
      else {
        result.lost += 1;
        const seq = published.get(messageId)?.message.seq;
        note("lost", `${plan.name} ${messageId} (message #${seq})`);
      }
    }
  }
  for (const [kind, count] of samples) {
    if (count > MAX_PROBLEMS_PER_KIND)
      result.problems.push(`${kind}: … ${count - MAX_PROBLEMS_PER_KIND} more`);
  }
  return result;
}

/** Every request for one message at one endpoint: attempt header, outcome, ms after `since`. */
function history(endpoint: Endpoint, webhookId: string, since: number): string {
  return endpoint.attempts
    .filter((attempt) => attempt.webhookId === webhookId)
    .map(
      (attempt) =>
        `attempt ${attempt.headers["switchboard-attempt"]} ${attempt.outcome} at ${attempt.receivedAt - since} ms`,
    )
    .join(", ");
}
