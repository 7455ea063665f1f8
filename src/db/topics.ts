/** Queries on topics. Each answers in one D1 round trip. */
import { asc, eq, gt, sql } from "drizzle-orm";
import type { Database } from "./client";
import { type RecordingMode, subscribers, topics } from "./schema";

/** A topic with the count of its subscribers, as every read answers it. */
export interface TopicRecord {
  name: string;
  description: string | null;
  recording: RecordingMode;
  createdAt: number;
  subscriberCount: number;
}

/** The settings a topic can change after it is created; absent ones stay as they are. */
export interface TopicChanges {
  description?: string | null | undefined;
  recording?: RecordingMode | undefined;
}

const subscriberCount = sql<number>`(select count(*) from ${subscribers} where ${subscribers.topic} = ${topics.name})`;

const topicColumns = {
  name: topics.name,
  description: topics.description,
  recording: topics.recording,
  createdAt: topics.createdAt,
  subscriberCount,
};

/** Creates a topic; false when the name is taken. */
export async function insertTopic(
  db: Database,
  topic: { name: string; description: string | null; recording: RecordingMode; createdAt: number },
): Promise<boolean> {
  const inserted = await db
    .insert(topics)
    .values(topic)
    .onConflictDoNothing()
    .returning({ name: topics.name });
  return inserted.length === 1;
}

/** A topic by name, with its subscriber count. */
export async function findTopic(db: Database, name: string): Promise<TopicRecord | undefined> {
  const [row] = await db.select(topicColumns).from(topics).where(eq(topics.name, name)).limit(1);
  return row;
}

/**
 * Applies `changes` to a topic and answers it as it now is, in one statement; undefined when there
 * is no such topic. No change at all is a read, since an UPDATE must set something.
 */
export async function updateTopic(
  db: Database,
  name: string,
  changes: TopicChanges,
): Promise<TopicRecord | undefined> {
  // drizzle leaves undefined values out of the SET, and refuses a SET with nothing in it.
  if (Object.values(changes).every((value) => value === undefined)) return findTopic(db, name);
  const [row] = await db
    .update(topics)
    .set(changes)
    .where(eq(topics.name, name))
    .returning(topicColumns);
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
