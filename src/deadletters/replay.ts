/**
 * Replaying dead letters: each becomes a fresh delivery task (attempts from 1) to the subscriber as
 * it is now, the filter not evaluated again. The task is queued before the dead letter is removed,
 * so a failure in between can leave a dead letter that was replayed, never one that was lost.
 */
import type { Database } from "../db/client";
import {
  type DeadLetterFilter,
  findReplayCandidates,
  markReplayed,
  type ReplayCandidate,
  storeReplayPayloads,
} from "../db/dead-letters";
import { deliveryKey } from "../db/deliveries";
import { logError } from "../log";
import {
  chunkForSendBatch,
  type DeliveryTask,
  INLINE_CONTENT_MAX_BYTES,
  type MessageContent,
  parseStoredContent,
  taskSize,
} from "../queues/tasks";

/** Dead letters read per page during a bulk replay. */
const PAGE_SIZE = 100;
/** A bulk replay stops after this many, to stay inside one request's limits; call it again. */
export const MAX_REPLAYS_PER_CALL = 5000;

/** A dead letter that can be replayed now, with its content parsed once. */
export interface Replayable {
  candidate: ReplayCandidate;
  content: MessageContent;
}

/** The dead letter ready to replay, or why it cannot be replayed now. */
export function checkReplayable(
  candidate: ReplayCandidate,
): { ok: true; replayable: Replayable } | { ok: false; reason: string } {
  if (candidate.subscriberActive === null) {
    return { ok: false, reason: `Subscriber ${candidate.subscriberId} was deleted` };
  }
  if (!candidate.subscriberActive) {
    return { ok: false, reason: `Subscriber ${candidate.subscriberId} is inactive` };
  }
  const content = parseStoredContent(candidate.payload);
  if (!content) return { ok: false, reason: "The message content has expired" };
  return { ok: true, replayable: { candidate, content } };
}

/** Replays the given dead letters; returns how many were queued. */
export async function replayCandidates(
  db: Database,
  queue: Queue<unknown>,
  replayables: readonly Replayable[],
  now: number,
): Promise<number> {
  const prepared = replayables.map(({ candidate, content }) => {
    const payload = candidate.payload ?? "";
    const bytes = new TextEncoder().encode(payload).byteLength;
    const inline = bytes <= INLINE_CONTENT_MAX_BYTES;
    const task: DeliveryTask = {
      messageId: candidate.messageId,
      subscriberId: candidate.subscriberId,
      topic: candidate.topic,
      publishedAt: candidate.publishedAt,
      content: null,
      replay: true,
      openedAt: now,
    };
    // The content's size is known from the stored JSON; only the rest of the task is measured.
    const size = taskSize(task) + (inline ? bytes : 0);
    if (inline) task.content = content;
    return { candidate, task, inline, payload, size };
  });
  const stored = prepared.filter((item) => !item.inline);
  if (stored.length > 0) {
    await storeReplayPayloads(
      db,
      stored.map(({ candidate, payload }) => ({ ...candidate, payload })),
    );
  }

  const sent: ReplayCandidate[] = [];
  for (const part of chunkForSendBatch(prepared, (item) => item.size)) {
    try {
      await queue.sendBatch(part.map((item) => ({ body: item.task })));
      sent.push(...part.map((item) => item.candidate));
    } catch (error) {
      logError("replay.send_failed", { error: String(error), count: part.length });
    }
  }
  if (sent.length === 0) return 0;
  try {
    await markReplayed(db, sent, now);
  } catch (error) {
    // The deliveries are queued; the dead letters stay visible until a later replay or retention.
    logError("replay.mark_failed", { error: String(error), count: sent.length });
  }
  return sent.length;
}

/**
 * Replays every replayable dead letter matching `filter` that existed when the call began (at
 * `now`), page by page, up to the per-call cap. A delivery replayed here that dies again gets a
 * new dead letter, whose id sorts after the cursor: the walk must not replay it a second time.
 */
export async function replayMatching(
  db: Database,
  queue: Queue<unknown>,
  filter: DeadLetterFilter,
  now: number,
): Promise<number> {
  let replayed = 0;
  let after: string | undefined;
  // Beside the time bound, which rests on clocks agreeing: each delivery goes once per call.
  const done = new Set<string>();
  while (replayed < MAX_REPLAYS_PER_CALL) {
    const page = await findReplayCandidates(db, filter, { after, limit: PAGE_SIZE, deadBy: now });
    if (page.length === 0) break;
    after = page[page.length - 1]?.id;
    const replayable = page
      .flatMap((candidate) => {
        const delivery = deliveryKey(candidate.messageId, candidate.subscriberId);
        if (done.has(delivery)) return [];
        const checked = checkReplayable(candidate);
        if (!checked.ok) return [];
        done.add(delivery);
        return [checked.replayable];
      })
      .slice(0, MAX_REPLAYS_PER_CALL - replayed);
    replayed += await replayCandidates(db, queue, replayable, now);
    if (page.length < PAGE_SIZE) break;
  }
  return replayed;
}
