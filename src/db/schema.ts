/**
 * The broker's storage, one table per thing the contract names. Every timestamp is an integer of
 * Unix milliseconds; the API turns them into ISO-8601 strings at the edge. JSON-shaped columns hold
 * JSON text. Each index names the query it serves.
 */
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export const MESSAGE_STATES = ["queued", "dispatched"] as const;
export const DELIVERY_STATES = ["pending", "retrying", "delivered", "dead", "cancelled"] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

export const topics = sqliteTable("topics", {
  name: text("name").primaryKey(),
  description: text("description"),
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
  },
  (t) => [
    // Retention: DELETE FROM messages WHERE published_at < ? (in chunks).
    index("messages_published_at_idx").on(t.publishedAt),
    // Deleting a topic drops its messages not yet fanned out:
    // DELETE FROM messages WHERE topic = ? AND state = 'queued'.
    index("messages_topic_state_idx").on(t.topic, t.state),
  ],
);

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
    createdAt: integer("created_at").notNull(),
  },
  (t) => [
    // The primary key serves GET /v1/messages/{id} (all deliveries of a message) and the
    // consumer's update of one delivery.
    primaryKey({ columns: [t.messageId, t.subscriberId] }),
    // Cancelling the open deliveries of a deleted or deactivated subscriber:
    // UPDATE deliveries SET state = 'cancelled' WHERE subscriber_id = ? AND state IN (...).
    index("deliveries_subscriber_state_idx").on(t.subscriberId, t.state),
    // Retention: DELETE FROM deliveries WHERE created_at < ? (in chunks).
    index("deliveries_created_at_idx").on(t.createdAt),
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

export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    topic: text("topic").notNull(),
    key: text("key").notNull(),
    messageId: text("message_id").notNull(),
    /** SHA-256 of the whole message as published, to tell a retry from a reused key. */
    payloadHash: text("payload_hash").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [
    // The primary key serves the publish-time lookup of (topic, key).
    primaryKey({ columns: [t.topic, t.key] }),
    // Retention: DELETE FROM idempotency_keys WHERE created_at < ? (in chunks).
    index("idempotency_keys_created_at_idx").on(t.createdAt),
  ],
);

export type TopicRow = typeof topics.$inferSelect;
export type SubscriberRow = typeof subscribers.$inferSelect;
export type MessageRow = typeof messages.$inferSelect;
export type DeliveryRow = typeof deliveries.$inferSelect;
export type DeadLetterRow = typeof deadLetters.$inferSelect;
