/** Queries on topics. Each answers in one D1 round trip. */
import { and, asc, eq, gt, inArray, sql } from "drizzle-orm";
import type { Database } from "./client";
import { deliveries, idempotencyKeys, messages, subscribers, topics } from "./schema";

export interface TopicRecord {
  name: string;
  description: string | null;
  createdAt: number;
  subscriberCount: number;
}

const subscriberCount = sql<number>`(select count(*) from ${subscribers} where ${subscribers.topic} = ${topics.name})`;

const topicColumns = {
  name: topics.name,
  description: topics.description,
  createdAt: topics.createdAt,
  subscriberCount,
};

/** Creates a topic; false when the name is taken. */
export async function insertTopic(
  db: Database,
  topic: { name: string; description: string | null; createdAt: number },
): Promise<boolean> {
  const inserted = await db
    .insert(topics)
    .values(topic)
    .onConflictDoNothing()
    .returning({ name: topics.name });
  return inserted.length === 1;
}

export async function findTopic(db: Database, name: string): Promise<TopicRecord | undefined> {
  const [row] = await db.select(topicColumns).from(topics).where(eq(topics.name, name)).limit(1);
  return row;
}

/** `limit` topics after `after` in name order. */
export async function listTopics(
  db: Database,
  options: { after: string | undefined; limit: number },
): Promise<TopicRecord[]> {
  return db
    .select(topicColumns)
    .from(topics)
    .where(options.after === undefined ? undefined : gt(topics.name, options.after))
    .orderBy(asc(topics.name))
    .limit(options.limit);
}

/**
 * Deletes a topic with its subscribers, idempotency keys and messages not yet fanned out, and cancels the deliveries still open
 * for those subscribers, in one transaction. False when there was no such topic.
 */
export async function deleteTopic(db: Database, name: string): Promise<boolean> {
  const subscriberIds = db
    .select({ id: subscribers.id })
    .from(subscribers)
    .where(eq(subscribers.topic, name));
  const [, , , , removed] = await db.batch([
    db
      .update(deliveries)
      .set({ state: "cancelled", nextAttemptAt: null })
      .where(
        and(
          inArray(deliveries.subscriberId, subscriberIds),
          inArray(deliveries.state, ["pending", "retrying"]),
        ),
      ),
    db.delete(subscribers).where(eq(subscribers.topic, name)),
    db.delete(idempotencyKeys).where(eq(idempotencyKeys.topic, name)),
    // Messages not fanned out yet would otherwise reach a new topic that takes the same name.
    db.delete(messages).where(and(eq(messages.topic, name), eq(messages.state, "queued"))),
    db.delete(topics).where(eq(topics.name, name)).returning({ name: topics.name }),
  ]);
  return removed.length === 1;
}
