import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { closeServer, flatHeaders, listenOnLoopback, readBody } from "./loopback-server";

/** One request as the subscriber's server saw it on the wire. */
export interface ReceivedRequest {
  method: string;
  /** Path and query string exactly as sent, e.g. `/orders/42?page=2`. */
  target: string;
  /** Names lower-cased by Node; repeated headers joined as Node joins them. */
  headers: Record<string, string>;
  /** Header names as they were on the wire, in order. */
  rawHeaderNames: string[];
  body: Buffer;
  /** `Date.now()` when the request was complete. */
  receivedAt: number;
}

/** How the server answers one request. */
export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** Decides the reply; `index` counts the requests this server has received, from 0. */
export type Responder = (request: ReceivedRequest, index: number) => Reply;

/** A subscriber endpoint that records every request and answers as told. */
export interface RecordingSubscriber {
  /** Origin without a trailing slash, e.g. `http://127.0.0.1:53211`. */
  url: string;
  /** Every request so far, in arrival order. */
  readonly requests: readonly ReceivedRequest[];
  /** Changes how later requests are answered. */
  respondWith(responder: Responder): void;
  /**
   * Resolves with the matching requests once there are at least `count`; rejects after
   * `timeoutMs` naming what was received, so a missing delivery fails fast and legibly.
   */
  waitFor(
    count: number,
    options?: { where?: (request: ReceivedRequest) => boolean; timeoutMs?: number },
  ): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

export const ok: Responder = () => ({ status: 200, body: "ok" });

/** Starts a recording subscriber on an ephemeral loopback port. */
export async function startSubscriber(responder: Responder = ok): Promise<RecordingSubscriber> {
  const requests: ReceivedRequest[] = [];
  const waiters = new Set<() => void>();
  let respond = responder;

  const server: Server = createServer((req, res) => {
    readBody(req).then(
      (body) => {
        const request = record(req, body);
        const index = requests.length;
        requests.push(request);
        let reply: Reply;
        try {
          reply = respond(request, index);
        } catch (error) {
          reply = { status: 599, body: `responder threw: ${String(error)}` };
        }
        send(res, reply);
        for (const wake of waiters) wake();
      },
      () => res.destroy(),
    );
  });
  const url = await listenOnLoopback(server);

  return {
    url,
    requests,
    respondWith(next) {
      respond = next;
    },
    waitFor(count, { where = () => true, timeoutMs = 15_000 } = {}) {
      return new Promise((resolve, reject) => {
        const wake = () => {
          const matching = requests.filter(where);
          if (matching.length < count) return;
          stop();
          resolve(matching);
        };
        const timer = setTimeout(() => {
          stop();
          const seen = requests.map(
            (r) =>
              `${r.method} ${r.target} id=${r.headers["webhook-id"]} attempt=${r.headers["switchboard-attempt"]}`,
          );
          reject(
            new Error(
              `expected ${count} matching request(s) within ${timeoutMs} ms, got ` +
                `${requests.filter(where).length}; all received: ${JSON.stringify(seen)}`,
            ),
          );
        }, timeoutMs);
        const stop = () => {
          clearTimeout(timer);
          waiters.delete(wake);
        };
        waiters.add(wake);
        wake();
      });
    },
    close() {
      return closeServer(server);
    },
  };
}

function record(req: IncomingMessage, body: Buffer): ReceivedRequest {
  return {
    method: req.method ?? "",
    target: req.url ?? "",
    headers: flatHeaders(req),
    rawHeaderNames: req.rawHeaders.filter((_, i) => i % 2 === 0),
    body,
    receivedAt: Date.now(),
  };
}

function send(res: ServerResponse, reply: Reply): void {
  res.writeHead(reply.status, { "content-type": "text/plain", ...reply.headers });
  res.end(reply.body ?? "");
}
