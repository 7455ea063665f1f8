/**
 * Checks the dead letters once the first wave has settled: the always-failing subscriber's
 * deliveries are all there, once each, after every attempt; a flaky delivery may have run out of
 * attempts too; nothing else belongs there.
 */
import type { DeadLetter } from "../src/api/schemas/dead-letters";
import type { Wired } from "./tally";

export interface DeadLetterCheck {
  /** Dead letters by subscriber id, to replay. */
  bySubscriber: Map<string, number>;
  problems: string[];
}

const MAX_PROBLEMS = 20;

/**
 * `deadLetters` is the whole list; `bySubscriberListing` what `?subscriberId=` listed for each
 * subscriber, which must be exactly that subscriber's part of it. `before` is when the replay
 * began: attempts seen until then belong to the first wave.
 */
export function checkDeadLetters(
  deadLetters: readonly DeadLetter[],
  bySubscriberListing: ReadonlyMap<string, readonly DeadLetter[]>,
  wired: readonly Wired[],
  expected: ReadonlyMap<string, ReadonlySet<string>>,
  before: number,
): DeadLetterCheck {
  const result: DeadLetterCheck = { bySubscriber: new Map(), problems: [] };
  const problem = (text: string) => {
    if (result.problems.length < MAX_PROBLEMS) result.problems.push(`dead letter: ${text}`);
  };
  const seen = new Set<string>();
  for (const letter of deadLetters) {
    const count = result.bySubscriber.get(letter.subscriberId) ?? 0;
    result.bySubscriber.set(letter.subscriberId, count + 1);
    const key = `${letter.subscriberId} ${letter.messageId}`;
    if (seen.has(key)) problem(`${letter.id} (${key}) is dead twice`);
    seen.add(key);
    checkLetter(letter, wired, expected, problem);
  }
  for (const { plan, id, endpoint } of wired) {
    const listed = bySubscriberListing.get(id) ?? [];
    const part = deadLetters.filter((letter) => letter.subscriberId === id);
    if (ids(listed) !== ids(part)) {
      problem(`?subscriberId=${id} (${plan.name}) lists other dead letters than the full list`);
    }
    if (plan.behaviour !== "failing") continue;
    const due = expected.get(id) ?? new Set<string>();
    const listedIds = new Set(listed.map((letter) => letter.messageId));
    const missing = [...due].filter((messageId) => !listedIds.has(messageId));
    if (missing.length > 0) {
      problem(
        `${missing.length} of ${due.size} deliveries to ${plan.name} are not dead letters, e.g. ${missing.slice(0, 3).join(", ")}`,
      );
    }
    const wanted = Array.from({ length: plan.retry.maxAttempts }, (_, i) => i + 1).join(",");
    const seenAttempts = attemptNumbers(endpoint.attempts, before);
    for (const messageId of due) {
      const numbers = seenAttempts.get(messageId) ?? "";
      if (numbers !== wanted) {
        problem(`${plan.name} saw attempts [${numbers}] of ${messageId}, expected [${wanted}]`);
      }
    }
  }
  return result;
}

/** One dead letter against the plan: due, on the right topic, at the right subscriber, all attempts used. */
function checkLetter(
  letter: DeadLetter,
  wired: readonly Wired[],
  expected: ReadonlyMap<string, ReadonlySet<string>>,
  problem: (text: string) => void,
) {
  const plan = wired.find((entry) => entry.id === letter.subscriberId)?.plan;
  const where = `${letter.id} (${plan?.name ?? letter.subscriberId}, ${letter.messageId})`;
  if (!plan) return problem(`${where} names no soak subscriber`);
  if (!expected.get(letter.subscriberId)?.has(letter.messageId)) problem(`${where} was never due`);
  if (letter.topic !== plan.topic) problem(`${where} has topic ${letter.topic}`);
  if (plan.behaviour === "healthy" || plan.behaviour === "slow") {
    problem(`${where}: a delivery to an endpoint that answers 200 died (${letter.lastError})`);
  }
  if (letter.attempts !== plan.retry.maxAttempts) {
    problem(`${where} has ${letter.attempts} attempts, expected ${plan.retry.maxAttempts}`);
  }
  if (plan.behaviour === "failing" && letter.lastStatus !== 500) {
    problem(`${where} has last status ${letter.lastStatus}, expected 500`);
  }
}

/** The distinct `switchboard-attempt` numbers each message arrived with before `before`, sorted. */
function attemptNumbers(
  attempts: readonly { webhookId: string; receivedAt: number; headers: Record<string, string> }[],
  before: number,
): Map<string, string> {
  const numbers = new Map<string, Set<number>>();
  for (const attempt of attempts) {
    if (attempt.receivedAt >= before) continue;
    const set = numbers.get(attempt.webhookId) ?? new Set<number>();
    set.add(Number(attempt.headers["switchboard-attempt"]));
    numbers.set(attempt.webhookId, set);
  }
  return new Map([...numbers].map(([id, set]) => [id, [...set].sort((a, b) => a - b).join(",")]));
}

function ids(letters: readonly DeadLetter[]): string {
  return letters.map((letter) => letter.id).join(",");
}
