/**
 * The probe behind bench/unit-costs.ts. Each route repeats one operation `n` times, one after
 * another, so that the runtime's CPU time over the request, divided by `n`, is that operation's:
 * - `GET /d1?n=`: a D1 round trip (`SELECT 1`, one statement in one batch);
 * - `GET /rows?n=&rows=`: a D1 batch inserting `rows` rows bound as one JSON list;
 * - `GET /queue?n=&rows=`: a `sendBatch` of `rows` task-sized messages, which the consumer acks;
 *   `GET /consumed` counts what it acked, so the caller can wait for the consumption too.
 */

// The bindings' types, as far as the probe uses them (bench/ is checked without the runtime's).
interface Statement {
  bind(...values: unknown[]): Statement;
}
interface Database {
  prepare(sql: string): Statement;
  batch(statements: Statement[]): Promise<unknown>;
}
interface Env {
  DB: Database;
  TASKS: { sendBatch(messages: { body: unknown }[]): Promise<void> };
}

const MAX_REPEATS = 10_000;
const MAX_ROWS = 100;
let consumed = 0;
let sequence = 0;

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/consumed") return Response.json({ consumed });
    const n = Number(url.searchParams.get("n") ?? "1");
    const rows = Number(url.searchParams.get("rows") ?? "1");
    if (!Number.isInteger(n) || n < 1 || n > MAX_REPEATS) {
      return new Response(`n must be 1..${MAX_REPEATS}`, { status: 400 });
    }
    if (!Number.isInteger(rows) || rows < 1 || rows > MAX_ROWS) {
      return new Response(`rows must be 1..${MAX_ROWS}`, { status: 400 });
    }
    for (let i = 0; i < n; i++) {
      if (url.pathname === "/d1") await env.DB.batch([env.DB.prepare("SELECT 1")]);
      else if (url.pathname === "/rows") await insertRows(env.DB, rows);
      else if (url.pathname === "/queue") await env.TASKS.sendBatch(tasks(rows));
      else return new Response("not found", { status: 404 });
    }
    return Response.json({ done: n });
  },

  async queue(batch: { messages: readonly unknown[]; ackAll(): void }): Promise<void> {
    batch.ackAll();
    consumed += batch.messages.length;
  },
};

async function insertRows(db: Database, rows: number): Promise<void> {
  const batch = sequence++;
  const pairs = Array.from({ length: rows }, (_, i) => [`msg_${batch}_${i}`, "sub_probe"]);
  await db.batch([
    db
      .prepare(
        `INSERT INTO rows (message_id, subscriber_id, state, attempts, created_at)
SELECT p.value ->> 0, p.value ->> 1, 'pending', 0, ?2 FROM json_each(?1) AS p`,
      )
      .bind(JSON.stringify(pairs), Date.now()),
  ]);
}

/** Shaped and sized like the broker's delivery tasks for the throughput bench's messages. */
function tasks(count: number): { body: unknown }[] {
  const publishedAt = Date.now();
  return Array.from({ length: count }, (_, i) => ({
    body: {
      messageId: `msg_${sequence++}`,
      subscriberId: "sub_probe",
      topic: "bench-e2e",
      publishedAt,
      content: {
        body: {
          kind: "json",
          value: { orderId: i, category: "food", total: 12.5, currency: "EUR" },
          contentType: "application/json",
        },
        headers: {},
        query: {},
        pathParams: {},
        method: null,
      },
    },
  }));
}
