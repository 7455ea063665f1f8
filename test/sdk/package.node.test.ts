/**
 * The SDK as a package: built by `npm run build`'s script into a folder laid out like an
 * install, then imported by name from a consumer project. Checks that its declarations stand on
 * their own under Node's module resolution, that the ESM entry points load in plain Node, that
 * the bundle holds nothing but the SDK, and what it weighs.
 */
import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
