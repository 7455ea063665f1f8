import { randomBytes } from "node:crypto";
import { startLocalWorker } from "./local-worker";

/** A request the broker has not answered by then has hung; fail it rather than the whole file. */
const requestTimeoutMs = 30_000;

/** Options for one request to a {@link LocalBroker}. */
export interface BrokerRequestInit {
  /** Defaults to POST when a body is given, else GET. */
  method?: string;
  /** Bearer token: the admin token when omitted, none when `null`. */
  token?: string | null;
  /** Sent as `application/json`. */
  json?: unknown;
  /** Sent as is; set the content type in `headers`. */
  body?: BodyInit;
  headers?: Record<string, string>;
}

/** A running broker, reachable over real HTTP on loopback. */
export interface LocalBroker {
  /** Origin without a trailing slash, e.g. `http://127.0.0.1:53211`. */
  url: string;
  adminToken: string;
  publishToken: string;
  /** `path` is relative to {@link url}, e.g. `/v1/topics?limit=2`. */
  request(path: string, init?: BrokerRequestInit): Promise<Response>;
  /** Stops the Worker and deletes its database. */
  dispose(): Promise<void>;
}

/**
 * Starts the broker from `wrangler.toml` in the same runtime as `wrangler dev`, with a fresh
 * local D1 database migrated from `migrations/`, random tokens and `ALLOW_PRIVATE_URLS="true"`.
 * `vars` override any of those, e.g. `{ ALLOW_PRIVATE_URLS: "false" }`.
 *
 * @example
 * const broker = await startBroker();
 * try {
 *   const res = await broker.request("/v1/topics", { json: { name: "orders" } });
 * } finally {
 *   await broker.dispose();
 * }
 */
export async function startBroker(
  options: { vars?: Record<string, string> } = {},
): Promise<LocalBroker> {
  const { ADMIN_TOKEN, PUBLISH_TOKEN, ...vars } = {
    ADMIN_TOKEN: randomToken("admin"),
    PUBLISH_TOKEN: randomToken("publish"),
    ALLOW_PRIVATE_URLS: "true",
    ...options.vars,
  };
  const worker = await startLocalWorker({
    config: "wrangler.toml",
    databases: [{ name: "switchboard", migrationsDir: "migrations" }],
    vars,
    secrets: { ADMIN_TOKEN, PUBLISH_TOKEN },
  });
  const url = worker.url.origin;
  return {
    url,
    adminToken: ADMIN_TOKEN,
    publishToken: PUBLISH_TOKEN,
    request(path, init = {}) {
      const headers = new Headers(init.headers);
      const token = init.token === undefined ? ADMIN_TOKEN : init.token;
      if (token !== null) headers.set("authorization", `Bearer ${token}`);
      let body = init.body;
      if (init.json !== undefined) {
        body = JSON.stringify(init.json);
        if (!headers.has("content-type")) headers.set("content-type", "application/json");
      }
      const method = init.method ?? (body === undefined ? "GET" : "POST");
      return fetch(new URL(path, url), {
        method,
        headers,
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(requestTimeoutMs),
      });
    },
    dispose: () => worker.dispose(),
  };
}

function randomToken(role: string): string {
  return `${role}_${randomBytes(24).toString("base64url")}`;
}
