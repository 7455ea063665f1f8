/**
 * The dead-letter queue's consumer. Three things arrive here: finished deliveries (dead,
 * delivered or cancelled) that the delivery consumer could not record itself; delivery tasks the
 * platform moved here after the queue's retries ran out; and fan-out tasks likewise. Dead
 * deliveries are recorded as dead letters, visible and replayable; a fan-out task is put back on
 * the fan-out queue a bounded number of times. It never throws.
 */
import {
  type DeliveryOutcome,
  deliveryKey,
  loadDeliveryContext,
  recordOutcomes,
} from "../db/deliveries";
import { newId } from "../db/ids";
import { doublingDelaySeconds } from "../delivery/backoff";
import { logError } from "../log";
import {
  type DeadRecord,
  DeadRecordSchema,
  DeliveryBundleSchema,
  type DeliveryTask,
  DeliveryTaskSchema,
  FanoutTaskSchema,
  type SettledRecord,
  SettledRecordSchema,
  unbundle,
} from "../queues/tasks";

/** A fan-out task goes back to its queue this many times, an hour apart, before it is given up. */
const MAX_FANOUT_REDRIVES = 24;
const FANOUT_REDRIVE_DELAY_SECONDS = 3600;
const RETRY_SECONDS = 60;

/**
 * How long a record that could not be stored waits: from a minute, doubling, up to an hour. With
 * the queue's 100 retries (wrangler.toml) that rides out a storage outage of about four days.
 */
const recordRetrySeconds = (attempts: number) =>
  doublingDelaySeconds(attempts, RETRY_SECONDS, 3600);

/** Handles one batch from the dead-letter queue. */
export async function handleDeadLetterBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const records: { message: Message<unknown>; record: DeadRecord }[] = [];
  const settled: { message: Message<unknown>; record: SettledRecord }[] = [];
  const exhausted: { message: Message<unknown>; task: DeliveryTask; bundled?: boolean }[] = [];

  for (const message of batch.messages) {
    const dead = DeadRecordSchema.safeParse(message.body);
    if (dead.success) {
      records.push({ message, record: dead.data });
      continue;
    }
    const finished = SettledRecordSchema.safeParse(message.body);
    if (finished.success) {
      settled.push({ message, record: finished.data });
      continue;
    }
    const delivery = DeliveryTaskSchema.safeParse(message.body);
    if (delivery.success) {
      exhausted.push({ message, task: delivery.data });
      continue;
    }
    const bundle = DeliveryBundleSchema.safeParse(message.body);
    if (bundle.success) {
      for (const task of unbundle(bundle.data)) exhausted.push({ message, task, bundled: true });
      continue;
    }
    const fanout = FanoutTaskSchema.safeParse(message.body);
    if (fanout.success) {
      await redriveFanout(message, fanout.data, env);
      continue;
    }
    logError("dead_letter.unknown_body", { id: message.id });
    message.ack();
  }
  if (records.length + settled.length + exhausted.length === 0) return;

  const pending = [
    ...new Set([
      ...records.map(({ message }) => message),
      ...settled.map(({ message }) => message),
      ...exhausted.map(({ message }) => message),
    ]),
  ];
  try {
    const context = await loadDeliveryContext(env.DB, {
      deliveries: exhausted.map(({ task }) => task),
      storedMessageIds: [],
    });
    const now = Date.now();
    const outcomes = [
      ...records.map(({ record }) => fromRecord(record)),
      ...settled.map(({ record }) => fromSettled(record)),
      ...exhausted.flatMap(({ message, task, bundled }) => {
        const stored = context.states.get(deliveryKey(task.messageId, task.subscriberId));
        // A bundle's delivery that an earlier consumption of it finished is not what ran out. One
        // left retrying has no task of its own: the bundle is acked once those are queued.
        const finished = stored?.state === "delivered" || stored?.state === "dead";
        if (bundled && (finished || stored?.state === "cancelled")) return [];
        const countIn = context.recordings.get(task.topic) === "failures" ? task.topic : undefined;
        return [
          fromExhaustedTask(task, stored?.attempts ?? 0, message.timestamp.getTime(), countIn),
        ];
      }),
    ];
    const gone = records
      .filter(({ record }) => record.gone)
      .map(({ record }) => record.subscriberId);
    await recordOutcomes(env.DB, outcomes, [...new Set(gone)], now);
    for (const message of pending) message.ack();
  } catch (error) {
    // Each one by name: should the outage outlast the queue's retries, this queue has none to
    // hand them to, and the log is where they can still be found.
    logError("dead_letter.record_failed", {
      error: String(error),
      attempts: Math.max(...pending.map((message) => message.attempts)),
      deliveries: [
        ...records.map(({ record }) => ({ kind: "dead", ...deliveryOf(record) })),
        ...settled.map(({ record }) => ({ kind: record.state, ...deliveryOf(record) })),
        ...exhausted.map(({ task }) => ({ kind: "exhausted", ...deliveryOf(task) })),
      ],
    });
    for (const message of pending) {
      message.retry({ delaySeconds: recordRetrySeconds(message.attempts) });
    }
  }
}

function deliveryOf(item: { messageId: string; subscriberId: string }) {
  return { messageId: item.messageId, subscriberId: item.subscriberId };
}

function fromRecord(record: DeadRecord): DeliveryOutcome {
  return {
    messageId: record.messageId,
    subscriberId: record.subscriberId,
    topic: record.topic,
    ...(record.countIn === undefined ? {} : { countIn: record.countIn }),
    state: "dead",
    attempts: record.attempts,
    lastStatus: record.lastStatus,
    lastError: record.lastError,
    lastAttemptAt: record.lastAttemptAt,
    nextAttemptAt: null,
    deadLetter: {
      id: record.deadLetterId ?? newId("dlq"),
      topic: record.topic,
      publishedAt: record.publishedAt,
      payload: record.content ? JSON.stringify(record.content) : (record.payload ?? null),
    },
  };
}

function fromSettled(record: SettledRecord): DeliveryOutcome {
  const { kind: _kind, ...outcome } = record;
  return { ...outcome, nextAttemptAt: null };
}

/**
 * A delivery task whose queue retries ran out, as a dead outcome. The queue may deliver it here
 * more than once; it keeps the time it was first queued, so a dead letter of the delivery from
 * then on means this task was recorded already (or the delivery died another way meanwhile).
 */
function fromExhaustedTask(
  task: DeliveryTask,
  attempts: number,
  queuedAt: number,
  countIn: string | undefined,
): DeliveryOutcome {
  return {
    messageId: task.messageId,
    subscriberId: task.subscriberId,
    topic: task.topic,
    ...(countIn === undefined ? {} : { countIn }),
    state: "dead",
    attempts,
    lastStatus: null,
    lastError: "The broker could not process this delivery before the queue's retries ran out",
    lastAttemptAt: null,
    nextAttemptAt: null,
    deadLetter: {
      id: newId("dlq"),
      unlessDeadSince: queuedAt,
      topic: task.topic,
      publishedAt: task.publishedAt,
      payload: task.content ? JSON.stringify(task.content) : null,
    },
  };
}

async function redriveFanout(
  message: Message<unknown>,
  task: ReturnType<typeof FanoutTaskSchema.parse>,
  env: Env,
): Promise<void> {
  const redrives = (task.redrives ?? 0) + 1;
  if (redrives > MAX_FANOUT_REDRIVES) {
    logError("fanout.given_up", { messageId: task.messageId, topic: task.topic });
    message.ack();
    return;
  }
  try {
    await env.FANOUT_QUEUE.send(
      { ...task, redrives },
      { delaySeconds: FANOUT_REDRIVE_DELAY_SECONDS },
    );
    message.ack();
  } catch (error) {
    logError("fanout.redrive_failed", { messageId: task.messageId, error: String(error) });
    message.retry({ delaySeconds: RETRY_SECONDS });
  }
}
