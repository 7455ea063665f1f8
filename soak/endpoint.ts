/**
 * A subscriber endpoint on loopback (node:http, port 0) that answers as its behaviour says and
 * records every request it saw, with the signature already checked: the timestamp tolerance is
 * only meaningful at the moment of receipt.
 */
import { createServer } from "node:http";
import { closeServer, flatHeaders, listenOnLoopback, readBody } from "../test/node/loopback-server";
import type { Behaviour } from "./plan";
import type { Random } from "./random";
import { signatureProblem } from "./signature";

/** How the endpoint ended a request. Only `accepted` is a delivery. */
export type Outcome = "accepted" | "refused" | "hung" | "abandoned";

export interface ReceivedAttempt {
  webhookId: string;
  method: string;
  /** Path and query exactly as sent. */
  target: string;
  /** Lower-cased names, as Node gives them. */
  headers: Record<string, string>;
  body: Buffer;
  /** When the whole request had arrived. */
  receivedAt: number;
  outcome: Outcome;
  /** Undefined when the signature verified. */
  signatureProblem: string | undefined;
}

export interface Endpoint {
  url: string;
  readonly attempts: readonly ReceivedAttempt[];
  /** The subscriber's secret, known once it is created (before anything is published). */
  setSecret(secret: string): void;
  /** From now on every request is answered 200. */
  fix(): void;
  close(): Promise<void>;
}

export interface EndpointOptions {
  behaviour: Behaviour;
  /** Draws the flaky endpoint's failures. */
  random: Random;
  /** The subscriber's timeout: a hang outlasts it, a slow answer stays inside it. */
  timeoutMs: number;
  slowMs: number;
}

/** The flaky endpoint fails this share of its attempts; a third of the failures hang. */
const FLAKY_FAILURE_RATE = 0.3;
const FLAKY_HANG_RATE = 0.1;
/** A hung request is dropped this long after the broker should have given up on it. */
const HANG_GRACE_MS = 5000;

export async function startEndpoint(options: EndpointOptions): Promise<Endpoint> {
  const attempts: ReceivedAttempt[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let behaviour = options.behaviour;
  let secret = "";

  const later = (ms: number, run: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      run();
    }, ms);
    timers.add(timer);
  };

  const server = createServer((req, res) => {
    readBody(req).then(
      (body) => {
        const headers = flatHeaders(req);
        const attempt: ReceivedAttempt = {
          webhookId: headers["webhook-id"] ?? "",
          method: req.method ?? "",
          target: req.url ?? "",
          headers,
          body,
          receivedAt: Date.now(),
          outcome: "refused",
          signatureProblem: signatureProblem(
            secret,
            headers,
            body,
            !isTextType(headers["content-type"]),
          ),
        };
        attempts.push(attempt);
        const answer = (status: number) => {
          if (res.destroyed) {
            attempt.outcome = "abandoned";
            return;
          }
          res.writeHead(status, { "content-type": "text/plain" });
          res.end(status === 200 ? "ok" : "failing on purpose", () => {
            if (status === 200) attempt.outcome = "accepted";
          });
        };
        switch (decide(behaviour, options.random)) {
          case "ok":
            return answer(200);
          case "fail":
            return answer(500);
          case "slow":
            return later(options.slowMs, () => answer(200));
          case "hang":
            attempt.outcome = "hung";
            later(options.timeoutMs + HANG_GRACE_MS, () => res.destroy());
            return;
        }
      },
      () => res.destroy(),
    );
  });
  server.keepAliveTimeout = 10_000;
  const url = await listenOnLoopback(server);

  return {
    url,
    attempts,
    setSecret(value) {
      secret = value;
    },
    fix() {
      behaviour = "healthy";
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      return closeServer(server);
    },
  };
}

function decide(behaviour: Behaviour, random: Random): "ok" | "fail" | "slow" | "hang" {
  switch (behaviour) {
    case "healthy":
      return "ok";
    case "failing":
      return "fail";
    case "slow":
      return "slow";
    case "flaky": {
      const draw = random();
      if (draw < FLAKY_HANG_RATE) return "hang";
      return draw < FLAKY_FAILURE_RATE ? "fail" : "ok";
    }
  }
}

/** JSON and text/* are checked as text; anything else as bytes. */
function isTextType(contentType: string | undefined): boolean {
  return (
    contentType !== undefined && /^text\/|^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType)
  );
}
