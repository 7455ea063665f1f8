/**
 * The platform floor: `GET /enqueue?n=&run=` puts `n` tasks shaped like the broker's delivery
 * tasks on a queue with `sendBatch`; the consumer POSTs each task's body to `SINK_URL` and acks it.
 * No storage, no signing, no validation: what is left is the queue and `fetch` themselves.
 */

interface QueueMessage {
  readonly body: unknown;
  ack(): void;
  retry(): void;
}

interface MessageBatch {
  readonly messages: readonly QueueMessage[];
}

interface Env {
  TASKS: { sendBatch(messages: { body: unknown }[]): Promise<void> };
  SINK_URL: string;
}

interface Task {
  messageId: string;
  subscriberId: string;
  topic: string;
  publishedAt: number;
  content: {
    body: { kind: "json"; value: unknown; contentType: string };
    headers: Record<string, string>;
    query: Record<string, string>;
    pathParams: Record<string, string>;
    method: null;
  };
}

/** The platform's `sendBatch` limit. */
const SEND_BATCH_MAX = 100;
/** The broker's delivery consumer keeps at most this many requests in flight (the platform's limit). */
const IN_FLIGHT = 6;
const MAX_TASKS = 100_000;

function isTask(value: unknown): value is Task {
  return typeof value === "object" && value !== null && "messageId" in value && "content" in value;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname !== "/enqueue") return new Response("not found", { status: 404 });
    const n = Number(url.searchParams.get("n"));
    if (!Number.isInteger(n) || n < 1 || n > MAX_TASKS) {
      return new Response(`n must be 1..${MAX_TASKS}`, { status: 400 });
    }
    const run = url.searchParams.get("run") ?? "0";
    const publishedAt = Date.now();
    for (let start = 0; start < n; start += SEND_BATCH_MAX) {
      const size = Math.min(SEND_BATCH_MAX, n - start);
      await env.TASKS.sendBatch(
        Array.from({ length: size }, (_, offset) => ({
          body: task(`${run}_${start + offset}`, start + offset, publishedAt),
        })),
      );
    }
    return Response.json({ enqueued: n });
  },

  async queue(batch: MessageBatch, env: Env): Promise<void> {
    const messages = [...batch.messages];
    let next = 0;
    const worker = async () => {
      while (next < messages.length) {
        const message = messages[next++];
        if (message) await deliver(message, env.SINK_URL);
      }
    };
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, messages.length) }, worker));
  },
};

async function deliver(message: QueueMessage, sink: string): Promise<void> {
  const { body } = message;
  if (!isTask(body)) {
    message.ack();
    return;
  }
  try {
    const response = await fetch(sink, {
      method: "POST",
      headers: { "content-type": body.content.body.contentType, "webhook-id": body.messageId },
      body: JSON.stringify(body.content.body.value),
      redirect: "manual",
    });
    await response.arrayBuffer();
    if (response.ok) message.ack();
    else message.retry();
  } catch {
    message.retry();
  }
}

/** The same shape and size as a broker delivery task for the same message body. */
function task(id: string, index: number, publishedAt: number): Task {
  return {
    messageId: `msg_${id}`,
    subscriberId: "sub_baseline",
    topic: "bench-e2e",
    publishedAt,
    content: {
      body: { kind: "json", value: messageBody(index), contentType: "application/json" },
      headers: {},
      query: {},
      pathParams: {},
      method: null,
    },
  };
}

/** Keep in step with `messageBody` in bench/throughput.ts: both sides send the same bytes. */
function messageBody(index: number) {
  return { orderId: index, category: "food", total: 12.5, currency: "EUR" };
}
