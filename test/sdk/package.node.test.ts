/**
 * The SDK as a package: built by `npm run build`'s script into a folder laid out like an
 * install, then imported by name from a consumer project. Checks that its declarations stand on
 * their own under Node's module resolution, that the ESM entry points load in plain Node, that
 * the bundle holds nothing but the SDK, and what it weighs; and that it runs on the oldest Node the
 * docs/sdk.md names.
 */
import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OLDEST_NODE, oldestNode, oldestNodeUnavailable } from "../node/oldest-node";
import { projectRoot } from "../node/wrangler-cli";

const run = promisify(execFile);

/** The minified ESM bundle of the whole SDK may not grow past this without a second look. */
const SIZE_BUDGET_BYTES = 16 * 1024;

let consumer: string;
let pkg: string;

beforeAll(async () => {
  consumer = await mkdtemp(join(tmpdir(), "switchboard-consumer-"));
  pkg = join(consumer, "node_modules", "switchboard");
  await mkdir(pkg, { recursive: true });
  await cp(join(projectRoot, "package.json"), join(pkg, "package.json"));
  await symlink(join(projectRoot, "node_modules", "hono"), join(consumer, "node_modules", "hono"));
  await writeFile(join(consumer, "package.json"), JSON.stringify({ type: "module" }));
  await run(process.execPath, ["scripts/build-sdk.mjs", "--outdir", join(pkg, "dist")], {
    cwd: projectRoot,
  });
});

afterAll(async () => {
  if (consumer) await rm(consumer, { recursive: true, force: true });
});

const CONSUMER_SOURCE = `
import { Hono } from "hono";
import {
  type Envelope,
  type MessageStatus,
  type SubscriberInput,
  type Topic,
  Switchboard,
  SwitchboardError,
  verifyWebhook,
  WebhookVerificationError,
} from "switchboard/sdk";
import { switchboardWebhook } from "switchboard/sdk/hono";

type IsAny<T> = 0 extends 1 & T ? true : false;
const topicIsTyped: IsAny<Topic> = false;
const statusIsTyped: IsAny<MessageStatus["deliveries"][number]> = false;

const sb = new Switchboard({ baseUrl: "https://sb.test", token: "t", retries: 2 });

export async function session(): Promise<string[]> {
  const envelope: Envelope = { body: { a: 1 }, headers: { x: "y" }, method: "PUT", delaySeconds: 5 };
  const { id, duplicate } = await sb.publish("orders", envelope, { idempotencyKey: "k" });
  const status = await sb.messages.get(id);
  const states: ("pending" | "retrying" | "delivered" | "dead" | "cancelled")[] =
    status.deliveries.map((delivery) => delivery.state);
  const names: string[] = [];
  for await (const topic of sb.topics.listAll({ limit: 10 })) names.push(topic.name);
  const input: SubscriberInput = { url: "https://x.test", retry: { maxAttempts: 3 } };
  const { secret } = await sb.subscribers.create("orders", input);
  try {
    await sb.topics.get("missing");
  } catch (error) {
    if (error instanceof SwitchboardError && error.code === "not_found") names.push(error.detail);
  }
  // @ts-expect-error: TRACE is not a method the broker delivers with
  await sb.publish("orders", { method: "TRACE" });
  // @ts-expect-error: a topic has no such field
  names.push(status.deliveries[0]?.subscriberName);
  return [secret, String(duplicate), ...states, ...names, String(topicIsTyped && statusIsTyped)];
}

type AppEnv = { Bindings: { SWITCHBOARD_SECRET: string } };
export const app = new Hono<AppEnv>().post(
  "/hooks/orders",
  switchboardWebhook<AppEnv>({ secret: (c) => c.env.SWITCHBOARD_SECRET }),
  (c) => c.json({ payload: c.get("webhookPayload") }),
);

export async function verify(headers: Headers, body: string): Promise<unknown> {
  try {
    return await verifyWebhook({ secret: ["whsec_a", "whsec_b"], headers, body });
  } catch (error) {
    if (error instanceof WebhookVerificationError) return error.reason;
    throw error;
  }
}
`;

describe("the built SDK package", () => {
  it("declares its types without the API's sources or zod", async () => {
    const types = await readFile(join(pkg, "dist", "sdk", "types.d.ts"), "utf8");
    expect(types).toMatch(/export type Topic = \{\n\s+name: string;/);
    expect(types).not.toMatch(/\bimport\b|zod/);
  });

  it("type-checks a consumer under Node's module resolution, browser libs only", async () => {
    await writeFile(join(consumer, "index.ts"), CONSUMER_SOURCE);
    await writeFile(
      join(consumer, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "es2022",
          module: "nodenext",
          moduleResolution: "nodenext",
          lib: ["es2022", "dom", "dom.iterable", "dom.asynciterable"],
          types: [],
          strict: true,
          noEmit: true,
          skipLibCheck: false,
        },
        files: ["index.ts"],
      }),
    );
    const tsc = join(projectRoot, "node_modules", ".bin", "tsc");
    const result = await run(tsc, ["-p", consumer]).catch((error: { stdout: string }) => error);
    expect(result.stdout).toBe("");
  });

  it("loads both entry points in plain Node", async () => {
    const script = `
      const sdk = await import("switchboard/sdk");
      const hono = await import("switchboard/sdk/hono");
      console.log(JSON.stringify([Object.keys(sdk).sort(), Object.keys(hono)]));
    `;
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], {
      cwd: consumer,
    });
    expect(JSON.parse(stdout)).toEqual([
      [
        "Switchboard",
        "SwitchboardError",
        "WebhookVerificationError",
        "newIdempotencyKey",
        "verifyWebhook",
      ],
      ["switchboardWebhook"],
    ]);
  });

  it("leaves the client out of a bundle that only verifies webhooks", async () => {
    const result = await build({
      stdin: {
        contents: 'export { verifyWebhook } from "switchboard/sdk";',
        resolveDir: consumer,
      },
      bundle: true,
      format: "esm",
      write: false,
    });
    const code = result.outputFiles[0]?.text ?? "";
    expect(code).toContain("function verifyWebhook");
    expect(code).not.toMatch(/publishBatch|idempotency|class Switchboard\b/);
  });

  it(`bundles to at most ${SIZE_BUDGET_BYTES} bytes minified, from src/sdk alone`, async () => {
    const result = await build({
      absWorkingDir: projectRoot,
      entryPoints: ["src/sdk/index.ts"],
      bundle: true,
      minify: true,
      format: "esm",
      write: false,
      metafile: true,
    });
    const size = result.outputFiles[0]?.contents.byteLength ?? 0;
    console.info(`SDK bundle: ${size} bytes minified`);
    expect(size).toBeLessThanOrEqual(SIZE_BUDGET_BYTES);
    expect(Object.keys(result.metafile.inputs).every((input) => input.startsWith("src/sdk/"))).toBe(
      true,
    );
  });
});

/**
 * Run by the oldest Node docs/sdk.md names, in the consumer project: the client against a loopback
 * server that fails the first attempt, the signature check before and after Web Crypto is made a
 * global as docs/sdk.md says, and the Hono middleware. Prints what it saw as JSON.
 */
const OLDEST_NODE_SCRIPT = `
import { createHmac, webcrypto } from "node:crypto";
import { createServer } from "node:http";
import { Hono } from "hono";
import { Switchboard, SwitchboardError, verifyWebhook } from "switchboard/sdk";
import { switchboardWebhook } from "switchboard/sdk/hono";

const seen = { node: process.version, attempts: [] };
const server = createServer((req, res) => {
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    seen.attempts.push({ path: req.url, key: req.headers["idempotency-key"], body });
    if (req.url === "/v1/topics/orders/messages" && seen.attempts.length === 1) {
      res.writeHead(503, { "content-type": "application/problem+json", "retry-after": "0" });
      res.end(JSON.stringify({ type: "about:blank", title: "Unavailable", status: 503, code: "unavailable", detail: "try again" }));
    } else if (req.url === "/v1/topics/orders/messages") {
      res.writeHead(202, { "content-type": "application/json" }).end('{"id":"msg_1","duplicate":false}');
    } else {
      res.writeHead(404, { "content-type": "application/problem+json" });
      res.end(JSON.stringify({ type: "about:blank", title: "Not Found", status: 404, code: "not_found", detail: "No topic named missing" }));
    }
  });
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const sb = new Switchboard({ baseUrl: "http://127.0.0.1:" + server.address().port, token: "t" });
seen.published = await sb.publish("orders", { body: { orderId: 42 } });
try {
  await sb.topics.get("missing");
} catch (error) {
  seen.error = error instanceof SwitchboardError ? error.code : String(error);
}
server.close();

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const body = '{"orderId":42}';
const timestamp = String(Math.floor(Date.now() / 1000));
const mac = createHmac("sha256", Buffer.from(secret.slice(6), "base64"))
  .update("msg_1." + timestamp + "." + body)
  .digest("base64");
const headers = { "webhook-id": "msg_1", "webhook-timestamp": timestamp, "webhook-signature": "v1," + mac };
seen.webCryptoGlobal = typeof globalThis.crypto;
try {
  await verifyWebhook({ secret, headers, body });
} catch (error) {
  seen.withoutWebCrypto = error.message;
}
globalThis.crypto = webcrypto;
seen.verified = await verifyWebhook({ secret, headers, body });

const app = new Hono().post("/hooks", switchboardWebhook({ secret }), (c) => c.json(c.get("webhookPayload")));
const hook = (signature) =>
  app.request("/hooks", { method: "POST", headers: { ...headers, "webhook-signature": signature }, body });
const good = await hook(headers["webhook-signature"]);
const forged = await hook("v1," + Buffer.alloc(32).toString("base64"));
seen.middleware = [good.status, await good.json(), forged.status];
console.log(JSON.stringify(seen));
`;

describe.skipIf(oldestNodeUnavailable)(`the built SDK package on Node ${OLDEST_NODE}`, () => {
  it("publishes with retries, verifies webhooks once Web Crypto is global, and runs the middleware", async () => {
    await writeFile(join(consumer, "oldest-node.mjs"), OLDEST_NODE_SCRIPT);
    const { stdout } = await run(await oldestNode(), ["oldest-node.mjs"], { cwd: consumer });
    const seen = JSON.parse(stdout);
    expect(seen.node).toBe(`v${OLDEST_NODE}`);
    expect(seen.published).toEqual({ id: "msg_1", duplicate: false });
    // The retry repeats the same request under the same key, so it cannot publish twice.
    const [first, second] = seen.attempts;
    expect(first).toMatchObject({
      path: "/v1/topics/orders/messages",
      body: '{"body":{"orderId":42}}',
    });
    expect(first.key).toMatch(/^[0-9a-f-]{36}$/);
    expect(second).toEqual(first);
    expect(seen.error).toBe("not_found");
    expect(seen.webCryptoGlobal).toBe("undefined");
    expect(seen.withoutWebCrypto).toContain("Web Crypto is not available");
    expect(seen.verified).toEqual({ orderId: 42 });
    expect(seen.middleware).toEqual([200, { orderId: 42 }, 401]);
  });
});
