/**
 * The built client over Node's own `fetch`, against a loopback server: arguments that `fetch`
 * or `JSON.stringify` would throw on are the caller's mistake, so they reject with
 * `invalid_request` at once, not as a network error after three retries.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectRoot } from "../node/wrangler-cli";

/**
 * The part of the built SDK this file calls. Declared here: the SDK's own types reach into the
 * API's schemas, which are type-checked for workerd, not Node.
 */
interface Client {
  publish(
    topic: string,
    envelope: { body: unknown },
    options?: { idempotencyKey?: string },
  ): Promise<unknown>;
  publishRaw(
    topic: string,
    body: string,
    options: { forwardHeaders?: Record<string, string> },
  ): Promise<unknown>;
}
interface Sdk {
  Switchboard: new (options: { baseUrl: string; token: string }) => Client;
  SwitchboardError: abstract new (...args: never[]) => Error;
}

let outdir: string;
let server: Server;
let requests = 0;
let sb: Client;
let SwitchboardError: Sdk["SwitchboardError"];

beforeAll(async () => {
  outdir = await mkdtemp(join(tmpdir(), "switchboard-fetch-"));
  await promisify(execFile)(process.execPath, ["scripts/build-sdk.mjs", "--outdir", outdir], {
    cwd: projectRoot,
  });
  const sdk = (await import(pathToFileURL(join(outdir, "sdk", "index.js")).href)) as Sdk;
  SwitchboardError = sdk.SwitchboardError;
  server = createServer((req, res) => {
    requests += 1;
    req.resume().on("end", () => {
      res.writeHead(202, { "content-type": "application/json" });
      res.end('{"id":"msg_1","topic":"t","duplicate":false}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  sb = new sdk.Switchboard({ baseUrl: `http://127.0.0.1:${port}`, token: "t" });
});

afterAll(async () => {
  if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  if (outdir) await rm(outdir, { recursive: true, force: true });
});

describe("arguments Node's fetch cannot send", () => {
  it.each<[string, () => Promise<unknown>]>([
    [
      "a header value outside Latin-1",
      () => sb.publishRaw("t", "x", { forwardHeaders: { "x-city": "東京" } }),
    ],
    [
      "a header value with a line break",
      () => sb.publish("t", { body: 1 }, { idempotencyKey: "a\nb" }),
    ],
    ["a BigInt in the body", () => sb.publish("t", { body: { total: 10n } })],
  ])("rejects %s with invalid_request, sending nothing", async (_, call) => {
    const before = requests;
    const error = await call().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SwitchboardError);
    expect(error).toMatchObject({ code: "invalid_request", status: undefined });
    expect(requests).toBe(before);
  });

  it("sends the same call once its arguments are sendable", async () => {
    const before = requests;
    await expect(
      sb.publishRaw("t", "x", { forwardHeaders: { "x-city": "Tokyo" } }),
    ).resolves.toMatchObject({ id: "msg_1" });
    expect(requests).toBe(before + 1);
  });
});
