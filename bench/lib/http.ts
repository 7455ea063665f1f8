/**
 * A small keep-alive HTTP client for the measurements. Node's `fetch` costs noticeably more CPU per
 * request than `node:http`, and on a 2-core machine that CPU comes out of the broker's share.
 */
import { Agent, request } from "node:http";

/** A request that has not finished by then has hung; fail it rather than the whole run. */
const REQUEST_TIMEOUT_MS = 30_000;

export interface HttpResult {
  status: number;
  body: string;
  /** From writing the request to the end of the answer, in milliseconds. */
  ms: number;
}

export interface SendOptions {
  token?: string;
  json?: unknown;
  headers?: Record<string, string>;
  /** How long the answer may take; {@link REQUEST_TIMEOUT_MS} unless told. */
  timeoutMs?: number;
}

export class HttpClient {
  readonly #agent: Agent;
  readonly #host: string;
  readonly #port: number;

  /** `sockets` bounds the connections kept to the origin; above the highest concurrency used. */
  constructor(origin: string, sockets = 32) {
    const url = new URL(origin);
    this.#host = url.hostname;
    this.#port = Number(url.port);
    this.#agent = new Agent({ keepAlive: true, maxSockets: sockets });
  }

  send(method: string, path: string, options: SendOptions = {}): Promise<HttpResult> {
    const headers: Record<string, string> = { ...options.headers };
    let payload: string | undefined;
    if (options.json !== undefined) {
      payload = JSON.stringify(options.json);
      headers["content-type"] = "application/json";
      headers["content-length"] = String(Buffer.byteLength(payload));
    }
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const req = request(
        { host: this.#host, port: this.#port, path, method, headers, agent: this.#agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("error", reject);
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString("utf8"),
              ms: performance.now() - started,
            }),
          );
        },
      );
      const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
      req.setTimeout(timeoutMs, () =>
        req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)),
      );
      req.on("error", reject);
      req.end(payload);
    });
  }

  /** Like {@link send}, but an answer other than `expected` is an error naming the body. */
  async expect(
    expected: number,
    method: string,
    path: string,
    options?: SendOptions,
  ): Promise<HttpResult> {
    const result = await this.send(method, path, options);
    if (result.status !== expected) {
      throw new Error(
        `${method} ${path}: expected ${expected}, got ${result.status}: ${result.body}`,
      );
    }
    return result;
  }

  close(): void {
    this.#agent.destroy();
  }
}

/**
 * Runs `count` calls of `work` with `concurrency` in flight (a closed loop: each worker starts its
 * next call when the last one finished) and returns each call's duration in milliseconds.
 */
export async function closedLoop(
  count: number,
  concurrency: number,
  work: (index: number) => Promise<number>,
): Promise<number[]> {
  const durations: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      durations.push(await work(index));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return durations;
}

/** Polls `check` every `intervalMs` until it returns true; fails after `timeoutMs`. */
export async function pollUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
