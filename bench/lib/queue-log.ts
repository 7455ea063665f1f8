/**
 * Observes the local queues through the line the local runtime prints after each consumer
 * invocation, `QUEUE <name> <acked>/<total> (<ms>ms)`: one line per batch handed to a consumer,
 * `total` messages in it, `total - acked` of them retried. Those lines are kept out of the report
 * (there are thousands) and recorded here instead.
 */

export interface QueueBatch {
  queue: string;
  acked: number;
  total: number;
  /** How long the consumer took, as the runtime measured it. */
  ms: number;
  /** `performance.now()` when the line was printed (just after the invocation finished). */
  at: number;
}

export interface QueueTotals {
  invocations: number;
  messages: number;
  retried: number;
  /** Sum of the consumer's own durations: time the queue's consumer was busy. */
  busyMs: number;
}

export interface QueueLog {
  /** The number of batches seen so far: pass it to {@link QueueLog.since} to look at a window. */
  mark(): number;
  since(mark: number): QueueBatch[];
  stop(): void;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the runtime colours its log lines.
const ANSI = /\u001b\[[0-9;]*m/g;
const LINE = /QUEUE (\S+) (\d+)\/(\d+)(?: \((\d+)ms\))?/;

export function tapQueueLog(): QueueLog {
  const batches: QueueBatch[] = [];
  const original = process.stdout.write;
  let pending = "";

  const keep = (line: string): boolean => {
    const match = LINE.exec(line.replace(ANSI, ""));
    if (!match) return true;
    batches.push({
      queue: match[1] ?? "",
      acked: Number(match[2]),
      total: Number(match[3]),
      ms: Number(match[4] ?? 0),
      at: performance.now(),
    });
    return false;
  };

  function write(this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
    const text =
      typeof chunk === "string"
        ? chunk
        : chunk instanceof Uint8Array
          ? Buffer.from(chunk).toString("utf8")
          : String(chunk);
    const lines = (pending + text).split("\n");
    pending = lines.pop() ?? "";
    const kept = lines.filter(keep);
    const out = kept.length > 0 ? `${kept.join("\n")}\n` : "";
    if (out === "") {
      // The callback, if any, still expects to be called once the write is done.
      const callback = rest.find((arg) => typeof arg === "function");
      if (typeof callback === "function") process.nextTick(() => callback());
      return true;
    }
    return Reflect.apply(original, this, [out, ...rest]);
  }
  process.stdout.write = write as typeof process.stdout.write;

  return {
    mark: () => batches.length,
    since: (mark) => batches.slice(mark),
    stop() {
      process.stdout.write = original;
      if (pending !== "" && keep(pending)) original.call(process.stdout, `${pending}\n`);
      pending = "";
    },
  };
}

/** Totals per queue name over some batches. */
export function totalsByQueue(batches: readonly QueueBatch[]): Map<string, QueueTotals> {
  const totals = new Map<string, QueueTotals>();
  for (const batch of batches) {
    const entry = totals.get(batch.queue) ?? { invocations: 0, messages: 0, retried: 0, busyMs: 0 };
    entry.invocations++;
    entry.messages += batch.total;
    entry.retried += batch.total - batch.acked;
    entry.busyMs += batch.ms;
    totals.set(batch.queue, entry);
  }
  return totals;
}
