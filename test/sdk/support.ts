/**
 * SDK clients wired to the Worker under test: requests go through its default export (or, with
 * replaced bindings, straight into its handler), never over the network.
 *
 * @example
 * const sb = adminClient();
 * await sb.topics.create({ name: uniqueName() });
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import worker from "../../src/index";
import {
  type FetchLike,
  Switchboard,
  SwitchboardError,
  type SwitchboardOptions,
} from "../../src/sdk";

export const BASE_URL = "https://switchboard.test";

/** `fetch` into the Worker: the injection the SDK documents for tests and service bindings. */
export const workerFetch: FetchLike = (input, init) =>
  exports.default.fetch(new Request(input, init));

/** `fetch` into the Worker with some bindings replaced, e.g. a queue that fails. */
export function workerFetchWith(overrides: () => Partial<Env>): FetchLike {
  return async (input, init) => {
    const ctx = createExecutionContext();
    const response = await worker.fetch(
      new Request(input, init),
      Object.assign({}, env, overrides()),
      ctx,
    );
    await waitOnExecutionContext(ctx);
    return response;
  };
}

/** A client with the admin token (unless `token` says otherwise). */
export function adminClient(options: Partial<SwitchboardOptions> = {}): Switchboard {
  return new Switchboard({
    baseUrl: BASE_URL,
    token: env.ADMIN_TOKEN,
    fetch: workerFetch,
    ...options,
  });
}

/** A client with the publish token. */
export function publisherClient(options: Partial<SwitchboardOptions> = {}): Switchboard {
  return adminClient({ token: env.PUBLISH_TOKEN, ...options });
}

/** One request as the SDK sent it, read before it reaches the Worker. */
export interface SentRequest {
  method: string;
  url: URL;
  headers: Headers;
  bytes: Uint8Array;
  /** The body decoded as UTF-8. */
  body: string;
}

/** Wraps a fetch so that a test can see what the SDK sent. */
export function recording(inner: FetchLike = workerFetch): {
  fetch: FetchLike;
  sent: SentRequest[];
} {
  const sent: SentRequest[] = [];
  return {
    sent,
    async fetch(input, init) {
      const request = new Request(input, init);
      const bytes = new Uint8Array(await request.clone().arrayBuffer());
      sent.push({
        method: request.method,
        url: new URL(request.url),
        headers: request.headers,
        bytes,
        body: new TextDecoder().decode(bytes),
      });
      return inner(input, init);
    },
  };
}

/** Awaits a call that must fail, checks its status and code, and returns the error. */
export async function expectSwitchboardError(
  call: Promise<unknown>,
  expected: { status: number | undefined; code: string },
): Promise<SwitchboardError> {
  const error = await call.then(
    () => expect.unreachable("the call succeeded"),
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(SwitchboardError);
  const failure = error as SwitchboardError;
  expect({ status: failure.status, code: failure.code }, failure.detail).toEqual(expected);
  expect(failure.detail).not.toBe("");
  // Every answer from the broker carries a request id; a proxy's or the client's own need not.
  if (expected.status !== undefined && expected.code !== "unexpected_response") {
    expect(failure.requestId).toMatch(/\S/);
  }
  return failure;
}
