/** A message's state: reading its status, and marking it dispatched. */
import { rowsOf } from "./d1";
import { cancellation, readRecord, type SubscriberMark } from "./delivery-record";
import { timeOf } from "./ids";
import type { DeliveryRow, MessageRow } from "./schema";

/** A message row without its (possibly large) stored payload. */
export type MessageSummary = Pick<
  MessageRow,
  "id" | "topic" | "state" | "matched" | "filtered" | "publishedAt"
>;

const MESSAGE = `SELECT id, topic, state, matched, filtered, published_at AS publishedAt,
  opened_at AS openedAt, delivery_record AS deliveryRecord
FROM messages WHERE id = ?1`;
const ROWS = `SELECT message_id AS messageId, subscriber_id AS subscriberId, state, attempts,
  last_status AS lastStatus, last_error AS lastError, last_attempt_at AS lastAttemptAt,
  next_attempt_at AS nextAttemptAt, created_at AS createdAt, topic
FROM deliveries WHERE message_id = ?1`;
/**
 * The topic of a message without a row (one whose topic records failures only) that has
 * deliveries recorded: its subscribers', else its dead letters'.
 */
const TOPIC_OF_ROWS = `SELECT coalesce(
  (SELECT topic FROM deliveries WHERE message_id = ?1 AND topic IS NOT NULL LIMIT 1),
  (SELECT s.topic FROM deliveries AS d JOIN subscribers AS s ON s.id = d.subscriber_id
    WHERE d.message_id = ?1 LIMIT 1),
  (SELECT topic FROM dead_letters WHERE message_id = ?1 LIMIT 1)) AS topic`;
/** The subscribers the message's deliveries go to, whose deactivation may have cancelled them. */
const SUBSCRIBERS = `SELECT id, active, deactivated_at AS deactivatedAt FROM subscribers
WHERE id IN (
  SELECT key FROM json_each(coalesce((SELECT delivery_record FROM messages WHERE id = ?1), '{}'))
  UNION SELECT subscriber_id FROM deliveries WHERE message_id = ?1)`;

/**
 * A message with all its deliveries, in subscriber order, in one round trip; undefined if there is
 * no such message. Each delivery is its row if it has one, else its entry in the message's record;
 * one still open whose subscriber is gone or was deactivated since it opened reads as cancelled.
 */
export async function findMessageStatus(
  d1: D1Database,
  id: string,
): Promise<{ message: MessageSummary; deliveries: DeliveryRow[] } | undefined> {
  const [found, rowResult, subscriberResult, topicResult] = await d1.batch([
    d1.prepare(MESSAGE).bind(id),
    d1.prepare(ROWS).bind(id),
    d1.prepare(SUBSCRIBERS).bind(id),
    d1.prepare(TOPIC_OF_ROWS).bind(id),
  ]);
  type Found = MessageSummary & { openedAt: number | null; deliveryRecord: string | null };
  const row =
    rowsOf<Found>(found)[0] ?? unrecordedMessage(id, rowsOf(rowResult).length, topicResult);
  if (!row) return undefined;
  const { openedAt, deliveryRecord, ...message } = row;

  const bySubscriber = new Map<string, DeliveryRow>();
  for (const [subscriberId, entry] of readRecord(deliveryRecord, openedAt)) {
    bySubscriber.set(subscriberId, {
      messageId: id,
      subscriberId,
      ...entry,
      lastError: null,
      createdAt: openedAt ?? message.publishedAt,
      topic: message.topic,
    });
  }
  for (const delivery of rowsOf<DeliveryRow>(rowResult)) {
    if (bySubscriber.get(delivery.subscriberId)?.state === "delivered") continue;
    bySubscriber.set(delivery.subscriberId, delivery);
  }
  const marks = new Map(
    rowsOf<{ id: string; active: number; deactivatedAt: number | null }>(subscriberResult).map(
      (mark): [string, SubscriberMark] => [
        mark.id,
        { active: mark.active !== 0, deactivatedAt: mark.deactivatedAt },
      ],
    ),
  );
  const deliveries = [...bySubscriber.values()]
    .map((delivery) => withCancellation(delivery, marks.get(delivery.subscriberId)))
    .sort((a, b) =>
      a.subscriberId < b.subscriberId ? -1 : a.subscriberId > b.subscriberId ? 1 : 0,
    );
  return { message, deliveries };
}

/**
 * A message of a topic that records failures only has no row; what is recorded of it is its
 * deliveries that went wrong. Undefined when there are none, or nothing tells its topic.
 */
function unrecordedMessage(
  id: string,
  deliveryRows: number,
  topicResult: D1Result<unknown> | undefined,
): (MessageSummary & { openedAt: null; deliveryRecord: null }) | undefined {
  const [found] = rowsOf<{ topic: string | null }>(topicResult);
  const publishedAt = timeOf(id);
  if (deliveryRows === 0 || !found?.topic || publishedAt === undefined) return undefined;
  return {
    id,
    topic: found.topic,
    state: "dispatched",
    matched: null,
    filtered: null,
    publishedAt,
    openedAt: null,
    deliveryRecord: null,
  };
}

/** An open delivery as its subscriber's state leaves it. */
function withCancellation(
  delivery: DeliveryRow,
  subscriber: SubscriberMark | undefined,
): DeliveryRow {
  if (delivery.state !== "pending" && delivery.state !== "retrying") return delivery;
  const reason = cancellation(subscriber, delivery.createdAt);
  if (reason === undefined) return delivery;
  return {
    ...delivery,
    state: "cancelled",
    nextAttemptAt: null,
    lastError: delivery.lastError ?? reason,
  };
}

/** Moves queued messages to dispatched; ?1 is a JSON list of their ids. */
export const MARK_DISPATCHED = `UPDATE messages SET state = 'dispatched'
WHERE id IN (SELECT value FROM json_each(?1)) AND state = 'queued'`;
