/**
 * The SDK's request and response types, taken from the API's own zod schemas. Only types cross
 * this boundary (`import type`), so nothing of zod or the API ends up in the bundle. Request
 * bodies use `z.input` (what a caller may send), answers `z.output` (what the broker returns).
 */
import type { z } from "zod";
import type * as filters from "../api/filters";
import type * as problem from "../api/problem";
import type * as common from "../api/schemas/common";
import type * as deadLetters from "../api/schemas/dead-letters";
import type * as envelope from "../api/schemas/envelope";
import type * as messages from "../api/schemas/messages";
import type * as subscribers from "../api/schemas/subscribers";
import type * as topics from "../api/schemas/topics";

/**
 * What the broker records of a topic's messages. `"full"` (the default): every message and
 * delivery can be read back with `messages.get`. `"failures"`: only deliveries that needed a retry
 * and dead letters are recorded, with per-minute counts, so a message delivered at its first
 * attempt leaves no record (`messages.get` answers `not_found`). A change applies to messages
 * published after it.
 */
export type RecordingMode = z.output<typeof topics.RecordingMode>;
/** `{ name, description?, recording? }`, the body of `topics.create`. */
export type TopicInput = z.input<typeof topics.TopicInput>;
/** `{ description?, recording? }`, the body of `topics.update`; `description: null` clears it. */
export type TopicPatch = z.input<typeof topics.TopicPatch>;
/** `{ name, description, recording, subscriberCount, createdAt }`. */
export type Topic = z.output<typeof topics.Topic>;
/** One page of topics: `{ topics, nextCursor }`. */
export type TopicList = z.output<typeof topics.TopicList>;

/** What `subscribers.create` takes; only `url` is required. */
export type SubscriberInput = z.input<typeof subscribers.SubscriberInput>;
/** What `subscribers.update` takes: any subset of {@link SubscriberInput}. */
export type SubscriberPatch = z.input<typeof subscribers.SubscriberPatch>;
/** A subscriber as the broker shows it, never with its secret. */
export type Subscriber = z.output<typeof subscribers.Subscriber>;
/** A subscriber with its signing secret, as `subscribers.create` answers (the only time). */
export type SubscriberWithSecret = z.output<typeof subscribers.SubscriberWithSecret>;
/** One page of a topic's subscribers: `{ subscribers, nextCursor }`. */
export type SubscriberList = z.output<typeof subscribers.SubscriberList>;
/** `{ secret }`, the answer of `subscribers.rotateSecret`. */
export type RotatedSecret = z.output<typeof subscribers.RotatedSecret>;

/** A message as a publisher sends it: `body` (any JSON), or `bodyText`/`bodyBase64`, and how to deliver it. */
export type Envelope = z.input<typeof envelope.Envelope>;
/** An envelope in `publishBatch`, which may carry its own `idempotencyKey`. */
export type BatchEnvelope = z.input<typeof envelope.BatchEnvelope>;
/** `{ id, topic, duplicate }`. */
export type PublishResult = z.output<typeof messages.PublishResult>;
/** `{ messages: [{ id, duplicate }] }`, in the order of the envelopes sent. */
export type PublishBatchResult = z.output<typeof messages.PublishBatchResult>;
/** A message's fan-out and the state of each of its deliveries. */
export type MessageStatus = z.output<typeof messages.MessageStatus>;
/** One subscriber's delivery of a message. */
export type Delivery = z.output<typeof messages.Delivery>;

/** A delivery that ran out of attempts. */
export type DeadLetter = z.output<typeof deadLetters.DeadLetter>;
/** One page of dead letters: `{ deadLetters, nextCursor }`. */
export type DeadLetterList = z.output<typeof deadLetters.DeadLetterList>;
/** Which dead letters `deadLetters.replayAll` replays: a topic, a subscriber, or (empty) all. */
export type ReplayFilter = z.input<typeof deadLetters.ReplayFilter>;
/** `{ replayed }`: how many dead letters were queued again. */
export type Replayed = z.output<typeof deadLetters.Replayed>;

/** `{ filter, message, topic? }`, the body of `filters.test`. */
export type FilterTest = z.input<typeof filters.FilterTest>;
/** `{ matches }`. */
export type FilterTestResult = z.output<typeof filters.FilterTestResult>;

/** A page request: `limit` (1–200, default 50) and the `nextCursor` of the previous page. */
export type PageParams = Partial<z.output<typeof common.PageQuery>>;
/** A page request for dead letters, optionally narrowed to a topic or a subscriber. */
export type DeadLetterListParams = Partial<z.output<typeof deadLetters.DeadLetterQuery>>;

/** The RFC 9457 problem+json body of every error the broker answers. */
export type Problem = problem.Problem;
/** One field that failed validation; `path` is dotted (`retry.maxAttempts`). */
export type FieldError = problem.FieldError;
/** The closed set of error codes the broker answers with. */
export type ProblemCode = problem.ProblemCode;
