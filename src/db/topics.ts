/** Queries on topics. Each answers in one D1 round trip. */
import { asc, eq, gt, sql } from "drizzle-orm";
import type { Database } from "./client";
import { subscribers, topics } from "./schema";

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
 * Deletes a topic with its subscribers, in one transaction; false when there was no such topic.
 * What it leaves is disowned by the deletion rather than written again: the deliveries still open
 * are cancelled by their subscribers' absence, and the messages and idempotency keys are older than
 * any topic made anew under the same name, which neither fans those messages out nor lets those
 * keys answer (src/db/fanout.ts, src/db/publish.ts).
 */
export async function deleteTopic(db: Database, name: string): Promise<boolean> {
  const [, removed] = await db.batch([
    db.delete(subscribers).where(eq(subscribers.topic, name)),
    db.delete(topics).where(eq(topics.name, name)).returning({ name: topics.name }),
  ]);
  return removed.length === 1;
}
