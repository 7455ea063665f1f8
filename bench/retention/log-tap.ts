/**
 * Catches the broker's own log lines about retention in what the local runtime prints. The Worker's
 * `console.error` reaches this process's stderr through wrangler (its `console.log` does not, at
 * the log level the harness starts wrangler with), coloured and framed: each JSON object whose
 * `event` starts with `retention.` is taken out of the output and kept here.
 */

export interface RetentionEvent {
  event: string;
  fields: Record<string, unknown>;
}

export interface RetentionLogTap {
  /** Events seen so far; pass the count to {@link RetentionLogTap.since} to look at a window. */
  mark(): number;
  since(mark: number): RetentionEvent[];
  stop(): void;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the runtime colours its log lines.
const ANSI = /\u001b\[[0-9;]*m/g;
const EVENT = /\{"level":"[a-z]+","event":"retention\.[^"]*".*\}/;

export function tapRetentionLog(): RetentionLogTap {
  const events: RetentionEvent[] = [];
  const streams = [process.stdout, process.stderr] as const;
  const originals = streams.map((stream) => stream.write);
  const pending = ["", ""];

  // wrangler frames an error with blank lines after it: those go with the event's line.
  let framing = false;
  const keep = (line: string): boolean => {
    const text = line.replace(ANSI, "");
    if (framing && text.trim() === "") return false;
    framing = false;
    const match = EVENT.exec(text);
    if (!match) return true;
    try {
      const fields = JSON.parse(match[0]) as Record<string, unknown>;
      events.push({ event: String(fields.event), fields });
      framing = true;
      return false;
    } catch {
      return true;
    }
  };

  streams.forEach((stream, index) => {
    const original = originals[index] as typeof stream.write;
    function write(this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
      const text =
        typeof chunk === "string"
          ? chunk
          : chunk instanceof Uint8Array
            ? Buffer.from(chunk).toString("utf8")
            : String(chunk);
      const lines = ((pending[index] ?? "") + text).split("\n");
      pending[index] = lines.pop() ?? "";
      const kept = lines.filter(keep);
      if (kept.length === 0) {
        const callback = rest.find((arg) => typeof arg === "function");
        if (typeof callback === "function") process.nextTick(() => callback());
        return true;
      }
      return Reflect.apply(original, this, [`${kept.join("\n")}\n`, ...rest]);
    }
    stream.write = write as typeof stream.write;
  });

  return {
    mark: () => events.length,
    since: (mark) => events.slice(mark),
    stop() {
      streams.forEach((stream, index) => {
        const original = originals[index] as typeof stream.write;
        stream.write = original;
        const rest = pending[index] ?? "";
        if (rest !== "" && keep(rest)) original.call(stream, `${rest}\n`);
        pending[index] = "";
      });
    },
  };
}
