/**
 * The broker's storage, one table per thing the contract names. Every timestamp is an integer of
 * Unix milliseconds; the API turns them into ISO-8601 strings at the edge. JSON-shaped columns hold
 * JSON text. Each index names the query it serves.
 *
 * Every row written is paid for (migrations/0003 says how D1 counts them), so the hot tables have
 * as few indexes as their queries allow: `messages` and `deliveries` are WITHOUT ROWID tables (which
 * drizzle cannot declare: the migrations do) keyed by time-ordered ids, so retention walks their
 * primary keys instead of a time index.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export const MESSAGE_STATES = ["queued", "dispatched"] as const;
export const DELIVERY_STATES = ["pending", "retrying", "delivered", "dead", "cancelled"] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

/** What a topic records of its deliveries: everything, or only what went wrong (and counts). */
export const RECORDING_MODES = ["full", "failures"] as const;
export type RecordingMode = (typeof RECORDING_MODES)[number];

export const topics = sqliteTable("topics", {
  name: text("name").primaryKey(),
  description: text("description"),
  /**
   * "full": every message and delivery can be read back. "failures": only deliveries that needed a
   * retry and dead letters are recorded, with per-minute counts (`topic_counts`), so that a message
   * delivered at once writes no row of its own.
   */
  recording: text("recording", { enum: RECORDING_MODES }).notNull().default("full"),
  createdAt: integer("created_at").notNull(),
});

export const subscribers = sqliteTable(
  "subscribers",
  {
    id: text("id").primaryKey(),
    topic: text("topic")
      .notNull()
      .references(() => topics.name, { onDelete: "cascade" }),
    url: text("url").notNull(),
    filter: text("filter"),
    method: text("method", { enum: HTTP_METHODS }).notNull().default("POST"),
    headers: text("headers", { mode: "json" }).$type<Record<string, string>>().notNull(),
    query: text("query", { mode: "json" }).$type<Record<string, string | string[]>>().notNull(),
    timeoutMs: integer("timeout_ms").notNull(),
    maxAttempts: integer("max_attempts").notNull(),
    baseDelaySeconds: integer("base_delay_seconds").notNull(),
    maxDelaySeconds: integer("max_delay_seconds").notNull(),
    active: integer("active", { mode: "boolean" }).notNull().default(true),
    description: text("description"),
    /** The signing secret; stored in the clear because every delivery signs with it. */
    secret: text("secret").notNull(),
    /** The secret before the last rotation, which keeps signing until `previousSecretExpiresAt`. */
    previousSecret: text("previous_secret"),
    previousSecretExpiresAt: integer("previous_secret_expires_at"),
    /**
     * When the subscriber was last made inactive (by a PATCH or a 410). Every delivery to it opened
     * before then is cancelled: readers apply this mark, rather than each open delivery being
     * updated when it is set.
     */
    deactivatedAt: integer("deactivated_at"),
    /** Bumped on every change, so that caches keyed by (id, version) never serve a stale filter. */
    version: integer("version").notNull().default(1),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    // GET /v1/topics/{topic}/subscribers (cursor on id), the fan-out's load of a topic's
    // active subscribers, and the subscriberCount of a topic.
    index("subscribers_topic_id_idx").on(t.topic, t.id),
  ],
);

export const messages = sqliteTable(
  "messages",
  {
    /** Time-ordered (a ULID): retention deletes by ranges of it. */
    id: text("id").primaryKey(),
    topic: text("topic").notNull(),
    state: text("state", { enum: MESSAGE_STATES }).notNull().default("queued"),
    /** Subscribers whose filter matched, and those filtered out; null until fanned out. */
    matched: integer("matched"),
    filtered: integer("filtered"),
    /** The message itself (JSON), kept only when it is too large to travel inside queue messages. */
    payload: text("payload"),
    publishedAt: integer("published_at").notNull(),
    /** When the first attempt may be made: `publishedAt` plus the message's delay (null: none). */
    availableAt: integer("available_at"),
    /**
     * Set when a publish with the same idempotency key answered for this message: from then on the
     * message is accepted whatever its own publish does, whose rollback must leave it alone.
     */
    adopted: integer("adopted", { mode: "boolean" }).notNull().default(false),
    /** The publish's `Idempotency-Key`, which answers for 24 hours; null without one. */
    idempotencyKey: text("idempotency_key"),
    /** SHA-256 of the whole message as published, to tell a retry from a reused key. */
    payloadHash: text("payload_hash"),
    /** When its deliveries were opened (fanned out); null until then. */
    openedAt: integer("opened_at"),
    /**
     * The compact record of its deliveries that have no row of their own: JSON, subscriber id to
     * entry (src/db/delivery-record.ts). Null until fanned out, and for messages from before it.
     */
    deliveryRecord: text("delivery_record"),
  },
  (t) => [
    // The publish-time lookup and claim of (topic, key); partial, so that a message without a key
    // writes no index row.
    index("messages_topic_key_idx")
      .on(t.topic, t.idempotencyKey)
      .where(sql`${t.idempotencyKey} IS NOT NULL`),
  ],
);

/**
 * Deliveries that need more than the message's compact record: those that needed a retry, died,
 * were cancelled, or were opened by a replay, and every delivery recorded before that record
 * existed. Readers take a row over the record's entry for the same delivery.
 */
export const deliveries = sqliteTable(
  "deliveries",
  {
    messageId: text("message_id").notNull(),
    subscriberId: text("subscriber_id").notNull(),
    state: text("state", { enum: DELIVERY_STATES }).notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    lastStatus: integer("last_status"),
    lastError: text("last_error"),
    lastAttemptAt: integer("last_attempt_at"),
    nextAttemptAt: integer("next_attempt_at"),
    /** When it was opened, or reopened by a replay: a subscriber deactivated since cancels it. */
    createdAt: integer("created_at").notNull(),
    /**
     * Its message's topic, which tells it when the message has no row (its topic records failures
     * only); null in rows from before it was kept.
     */
    topic: text("topic"),
  },
  (t) => [
    // The primary key serves GET /v1/messages/{id} (all deliveries of a message), the consumer's
    // update of one delivery, and retention, which walks it by message id (time-ordered).
    primaryKey({ columns: [t.messageId, t.subscriberId] }),
  ],
);

export const deadLetters = sqliteTable(
  "dead_letters",
  {
    id: text("id").primaryKey(),
    messageId: text("message_id").notNull(),
    topic: text("topic").notNull(),
    subscriberId: text("subscriber_id").notNull(),
    attempts: integer("attempts").notNull(),
    lastStatus: integer("last_status"),
    lastError: text("last_error"),
    publishedAt: integer("published_at").notNull(),
    /** The message content (JSON) a replay sends again; null if it expired before it died. */
    payload: text("payload"),
    deadAt: integer("dead_at").notNull(),
  },
  (t) => [
    // GET /v1/dead-letters?topic= and replay of all dead letters of a topic (cursor on id).
    index("dead_letters_topic_id_idx").on(t.topic, t.id),
    // GET /v1/dead-letters?subscriberId= and replay of all dead letters of a subscriber.
    index("dead_letters_subscriber_id_idx").on(t.subscriberId, t.id),
    // A delivery's dead letters: whether a newer one exists when a replay is marked, and the
    // content of an earlier one when a delivery dies again after its message expired.
    index("dead_letters_delivery_idx").on(t.messageId, t.subscriberId, t.id),
    // Retention: DELETE FROM dead_letters WHERE dead_at < ? (in chunks).
    index("dead_letters_dead_at_idx").on(t.deadAt),
  ],
);

/**
 * Idempotency keys of topics that record failures only, whose messages have no row to hold them:
 * one row per key, keyed by the UTC day it was claimed on, so that a key is looked up in today's
 * and yesterday's days and retention drops whole days along the primary key (WITHOUT ROWID, in
 * the migrations).
 */
export const idempotencyClaims = sqliteTable(
  "idempotency_claims",
  {
    day: integer("day").notNull(),
    topic: text("topic").notNull(),
    key: text("key").notNull(),
    messageId: text("message_id").notNull(),
    /** SHA-256 of the whole message as published, to tell a retry from a reused key. */
    payloadHash: text("payload_hash").notNull(),
    createdAt: integer("created_at").notNull(),
    /**
     * Set when a repeated publish answered for the claim's message: the rollback of the message's
     * own publish then leaves the claim (and the message's row, if it has one), as for `messages`.
     */
    adopted: integer("adopted", { mode: "boolean" }).notNull().default(false),
  },
  (t) => [primaryKey({ columns: [t.day, t.topic, t.key] })],
);

/**
 * What happened to the deliveries of topics that record failures only, per topic and minute:
 * written at most once per topic per consumer batch (WITHOUT ROWID, in the migrations; retention
 * walks the primary key by minute).
 */
export const topicCounts = sqliteTable(
  "topic_counts",
  {
    /** The minute's first millisecond. */
    minute: integer("minute").notNull(),
    topic: text("topic").notNull(),
    /** Deliveries that succeeded. */
    delivered: integer("delivered").notNull().default(0),
    /** Attempts that failed and were scheduled again. */
    retried: integer("retried").notNull().default(0),
    /** Deliveries that died. */
    dead: integer("dead").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.minute, t.topic] })],
);

export type TopicRow = typeof topics.$inferSelect;
export type SubscriberRow = typeof subscribers.$inferSelect;
export type MessageRow = typeof messages.$inferSelect;
export type DeliveryRow = typeof deliveries.$inferSelect;
export type DeadLetterRow = typeof deadLetters.$inferSelect;
