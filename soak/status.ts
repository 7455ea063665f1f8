/**
 * The broker's own account, message by message (`GET /v1/messages/{id}`): fanned out to exactly
 * the matching subscribers, the rest counted as filtered, and every delivery delivered. Replayed
 * deliveries started again from attempt 1.
 */
import type { LocalBroker } from "../test/node/broker";
import { messageStatus } from "./api";
import type { Published } from "./publish";
import type { Wired } from "./tally";
import { runPool } from "./util";

export interface StatusCheck {
  checked: number;
  mismatches: number;
  problems: string[];
}

export async function checkStatuses(
  broker: LocalBroker,
  wired: readonly Wired[],
  published: ReadonlyMap<string, Published>,
  expected: ReadonlyMap<string, ReadonlySet<string>>,
  /** `subscriberId messageId` of deliveries replayed to an endpoint that then answered 200. */
  replayedOnce: ReadonlySet<string>,
  concurrency: number,
  signal?: AbortSignal,
): Promise<StatusCheck> {
  const result: StatusCheck = { checked: 0, mismatches: 0, problems: [] };
  await runPool(
    [...published.values()],
    concurrency,
    async ({ id, message }) => {
      const status = await messageStatus(broker, id);
      result.checked += 1;
      const problems: string[] = [];
      const onTopic = wired.filter((entry) => entry.plan.topic === message.topic);
      const due = onTopic
        .filter((entry) => expected.get(entry.id)?.has(id))
        .map((entry) => entry.id);
      if (status.topic !== message.topic) problems.push(`topic ${status.topic}`);
      if (status.state !== "dispatched") problems.push(`state ${status.state}`);
      if (status.matched !== due.length)
        problems.push(`matched ${status.matched}, expected ${due.length}`);
      if (status.filtered !== onTopic.length - due.length) {
        problems.push(`filtered ${status.filtered}, expected ${onTopic.length - due.length}`);
      }
      const got = status.deliveries.map((delivery) => delivery.subscriberId).sort();
      if (JSON.stringify(got) !== JSON.stringify([...due].sort())) {
        problems.push(
          `deliveries to ${got.join(",") || "nobody"}, expected ${due.join(",") || "nobody"}`,
        );
      }
      for (const delivery of status.deliveries) {
        if (delivery.state !== "delivered") {
          problems.push(
            `${delivery.subscriberId} ${delivery.state} after ${delivery.attempts} attempts (${delivery.lastError})`,
          );
        } else if (replayedOnce.has(`${delivery.subscriberId} ${id}`) && delivery.attempts !== 1) {
          problems.push(
            `${delivery.subscriberId} replayed, but ${delivery.attempts} attempts recorded`,
          );
        } else if (delivery.attempts < 1) {
          problems.push(`${delivery.subscriberId} delivered with ${delivery.attempts} attempts`);
        }
      }
      if (problems.length > 0) {
        result.mismatches += 1;
        if (result.problems.length < 10) {
          result.problems.push(`status of ${id} (message #${message.seq}): ${problems.join("; ")}`);
        }
      }
    },
    signal,
  );
  return result;
}
