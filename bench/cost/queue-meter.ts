/**
 * Queue bindings and batches that count, without changing what they do: a producer counts each
 * message it writes and its size; a batch handed to the broker's consumer counts each message in
 * it and how it ended (acked, retried, or left for the platform to ack when the handler returns).
 */
import type { Meter } from "./meter";
import { passThrough } from "./pass-through";

// The runtime's shapes, as far as this file relies on them.
export interface Producer {
  send(body: unknown, options?: unknown): Promise<unknown>;
  sendBatch(messages: Iterable<{ body: unknown }>, options?: unknown): Promise<unknown>;
}
export interface Message {
  readonly id: string;
  readonly body: unknown;
  ack(): void;
  retry(options?: unknown): void;
}
export interface Batch {
  readonly queue: string;
  readonly messages: readonly Message[];
  ackAll(): void;
  retryAll(options?: unknown): void;
}

/** The producer of `queue`, counting what it writes once the platform has accepted it. */
export function meterProducer(producer: Producer, queue: string, meter: Meter): Producer {
  return passThrough(producer, {
    async send(body: unknown, options?: unknown) {
      const result = await producer.send(body, options);
      meter.sent(queue, body);
      return result;
    },
    async sendBatch(messages: Iterable<{ body: unknown }>, options?: unknown) {
      const list = [...messages];
      const result = await producer.sendBatch(list, options);
      for (const message of list) meter.sent(queue, message.body);
      return result;
    },
  });
}

export interface MeteredBatch {
  batch: Batch;
  /** Call when the handler is done: `returned` false when it threw, which retries them all. */
  settle(returned: boolean): void;
}

/** Wraps a batch for the broker's consumer; the first call on a message decides, as on the platform. */
export function meterBatch(batch: Batch, meter: Meter): MeteredBatch {
  const queue = batch.queue;
  const decided = new Set<string>();
  const decide = (id: string, outcome: "ack" | "retry" | "implicit") => {
    if (decided.has(id)) return;
    decided.add(id);
    meter.ended(queue, id, outcome);
  };
  meter.invocation(queue);
  const messages = batch.messages.map((message) => {
    meter.consumed(queue, message.id, message.body);
    return passThrough(message, {
      ack() {
        decide(message.id, "ack");
        message.ack();
      },
      retry(options?: unknown) {
        decide(message.id, "retry");
        message.retry(options);
      },
    });
  });
  const metered = passThrough(batch, {
    messages,
    ackAll() {
      for (const message of batch.messages) decide(message.id, "ack");
      batch.ackAll();
    },
    retryAll(options?: unknown) {
      for (const message of batch.messages) decide(message.id, "retry");
      batch.retryAll(options);
    },
  });
  return {
    batch: metered,
    settle(returned) {
      for (const message of batch.messages) decide(message.id, returned ? "implicit" : "retry");
    },
  };
}
