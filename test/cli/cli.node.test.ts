/**
 * The `switchboard` CLI as users run it: the built dist/cli/index.mjs in a child process with
 * plain `node`, against a broker started the way `wrangler dev` runs it, delivering to a local
 * HTTP subscriber.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Topic } from "../../src/api/schemas/topics";
import type * as Webhook from "../../src/sdk/webhook";
import { type LocalBroker, startBroker } from "../node/broker";
import { OLDEST_NODE, oldestNode, oldestNodeUnavailable } from "../node/oldest-node";
import { projectRoot } from "../node/wrangler-cli";

let outdir: string;
let cli: string;
let broker: LocalBroker;
let subscriber: LocalSubscriber;

beforeAll(async () => {
  outdir = await mkdtemp(join(tmpdir(), "switchboard-cli-"));
  cli = join(outdir, "cli", "index.mjs");
  // Built into a folder of its own, so that no other build can change it under the test.
  const build = promisify(execFile)(
    process.execPath,
    ["scripts/build-sdk.mjs", "--outdir", outdir],
    {
      cwd: projectRoot,
    },
  );
  [broker, subscriber] = await Promise.all([startBroker(), startSubscriber(), build]).then(
    ([started, server]) => [started, server] as const,
  );
});

afterAll(async () => {
  await Promise.all([broker?.dispose(), subscriber?.close()]);
  if (outdir) await rm(outdir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with the broker's URL and admin token unless `env` says otherwise. */
function run(
  args: string[],
  options: {
    env?: Record<string, string | undefined>;
    input?: string | Uint8Array;
    node?: string;
  } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(options.node ?? process.execPath, [cli, ...args], {
      env: {
        PATH: process.env.PATH,
        SWITCHBOARD_URL: broker.url,
        SWITCHBOARD_TOKEN: broker.adminToken,
        ...options.env,
      },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}

/** Runs the CLI, expects exit code 0, and parses its stdout as JSON. */
async function json<T>(args: string[], options: Parameters<typeof run>[1] = {}): Promise<T> {
  const result = await run([...args, "--json"], options);
  expect(result, result.stderr).toMatchObject({ code: 0 });
  return JSON.parse(result.stdout) as T;
}

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The body's bytes as they arrived, before any decoding. */
  bytes: Buffer;
}

interface LocalSubscriber {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

/** An HTTP subscriber on loopback: `/ok…` answers 204, `/fail…` 500. */
async function startSubscriber(): Promise<LocalSubscriber> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const bytes = Buffer.concat(chunks);
      received.push({ path: req.url ?? "", headers: req.headers, body: bytes.toString(), bytes });
      res.writeHead(req.url?.startsWith("/fail") ? 500 : 204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let counter = 0;
function topicName(label: string): string {
  counter += 1;
  return `cli.${label}-${counter}`;
}

const COMMANDS = [
  "topics create",
  "topics list",
  "topics show",
  "topics update",
  "topics delete",
  "subscribers add",
  "subscribers list",
  "subscribers show",
  "subscribers update",
  "subscribers remove",
  "subscribers rotate-secret",
  "publish",
  "messages show",
  "dead-letters list",
  "dead-letters replay",
  "dead-letters delete",
];

describe("help", () => {
  it("lists every command, the environment and the exit codes", async () => {
    const result = await run(["--help"], { env: { SWITCHBOARD_URL: undefined } });
    expect(result.code).toBe(0);
    for (const command of COMMANDS) expect(result.stdout).toContain(`  ${command}`);
    expect(result.stdout).toContain("SWITCHBOARD_TOKEN");
    expect(result.stdout).toMatch(/Exit codes/);
  });

  it.each(COMMANDS)("explains %s", async (command) => {
    const result = await run([...command.split(" "), "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: switchboard ${command}`);
    expect(result.stdout).toContain("--json");
  });

  it("lists a group's commands", async () => {
    const result = await run(["dead-letters", "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/dead-letters replay \[id\]/);
  });

  it.each([
    [[], /Usage: switchboard <command>/],
    [["frobnicate"], /Unknown command "frobnicate"/],
    [["topics", "frobnicate"], /Unknown command "topics frobnicate"/],
    [["topics", "create", "a", "--colour", "red"], /Unknown option '--colour'/],
    [["topics", "create"], /topics create needs <name>/],
    [["topics", "create", "a", "b"], /Unexpected argument "b"/],
    [["publish", "t", "--body", "{nope"], /not valid JSON/],
    [["subscribers", "add", "t"], /needs --url/],
    [["topics", "create", "t", "--recording", "some"], /--recording must be one of full, failures/],
    [["topics", "update", "t", "--recording", "none"], /--recording must be one of full, failures/],
    [["topics", "update", "t"], /Give at least one setting to change/],
    [["topics", "update", "--recording", "full"], /topics update needs <name>/],
    [
      ["subscribers", "add", "t", "--url", "https://x.test", "--max-attempts", "many"],
      /whole number/,
    ],
  ])("exits 2 on a usage error: %j", async (args, message) => {
    const result = await run(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toBe("");
  });

  it.each([
    [["publish", "t", "--body", "{}", "--idempotency-key", "key-€"], /"idempotency-key"/],
    [
      ["publish", "t", "--content-type", "text/plain", "--header", "x-city=東京"],
      /"forward-x-city"/,
    ],
  ])("exits 2 on arguments no request can carry: %j", async (args, message) => {
    const result = await run(args, { input: "" });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it("exits 2 on a token no header can carry, without printing it", async () => {
    const result = await run(["topics", "list"], { env: { SWITCHBOARD_TOKEN: "s3cr€t" } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("SWITCHBOARD_TOKEN");
    expect(result.stderr).not.toContain("s3cr");
  });

  it("exits 2 when the broker is not configured", async () => {
    const result = await run(["topics", "list"], { env: { SWITCHBOARD_TOKEN: undefined } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("SWITCHBOARD_URL and SWITCHBOARD_TOKEN");
  });
});

describe("from a topic to a delivered message", () => {
  it("creates, subscribes, publishes and shows the delivery, verified by the subscriber", async () => {
    const topic = topicName("orders");
    const created = await run(["topics", "create", topic, "--description", "New orders"]);
    expect(created).toMatchObject({ code: 0, stdout: `Created topic ${topic}\n` });

    const added = await json<{ id: string; secret: string; url: string }>([
      "subscribers",
      "add",
      topic,
      "--url",
      `${subscriber.url}/ok/:orderId`,
      "--filter",
      "body.total > 10",
      "--header",
      "x-api-key=k1",
    ]);
    expect(added.secret).toMatch(/^whsec_/);

    const listed = await run(["topics", "list"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^NAME\s+SUBSCRIBERS\s+RECORDING\s+CREATED\s+DESCRIPTION/);
    expect(listed.stdout).toMatch(
      new RegExp(`${topic.replace(".", "\\.")}\\s+1\\s+full\\s+\\S+\\s+New orders`),
    );

    const published = await json<{ id: string; duplicate: boolean }>([
      "publish",
      topic,
      "--body",
      '{"orderId":42,"total":99.5}',
      "--path-param",
      "orderId=42",
      "--header",
      "x-tenant=acme",
    ]);
    expect(published.duplicate).toBe(false);

    let shown = await run(["messages", "show", published.id]);
    for (let i = 0; i < 100 && !/\bdelivered\b/.test(shown.stdout); i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      shown = await run(["messages", "show", published.id]);
    }
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`${added.id}\\s+delivered\\s+1\\s+204`));
    expect(shown.stdout).toMatch(/Matched:\s+1/);

    const delivery = subscriber.received.find((r) => r.headers["webhook-id"] === published.id);
    expect(delivery?.path).toBe("/ok/42");
    expect(delivery?.headers).toMatchObject({ "x-api-key": "k1", "x-tenant": "acme" });
    const sdk = (await import(
      pathToFileURL(join(outdir, "sdk", "index.js")).href
    )) as typeof Webhook;
    expect(
      await sdk.verifyWebhook({
        secret: added.secret,
        headers: delivery?.headers ?? {},
        body: delivery?.body ?? "",
      }),
    ).toEqual({ orderId: 42, total: 99.5 });
  });

  it("publishes a body from stdin, and the same idempotency key once", async () => {
    const topic = topicName("stdin");
    await run(["topics", "create", topic]);
    const args = ["publish", topic, "--idempotency-key", "k-1"];
    const first = await json<{ id: string; duplicate: boolean }>(args, { input: '{"n":1}' });
    const again = await run(args, { input: '{"n":1}' });
    expect(first.duplicate).toBe(false);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`Already published as ${first.id}`);
  });

  it("publishes raw text with --content-type", async () => {
    const topic = topicName("raw");
    await run(["topics", "create", topic]);
    const result = await run([
      "publish",
      topic,
      "--content-type",
      "text/csv",
      "--body",
      "a,b\n1,2",
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Published msg_\S+ to cli\.raw-\d+\n$/);
  });
});

/** Waits until the subscriber has received the message with this id. */
async function deliveryOf(messageId: string): Promise<Received | undefined> {
  for (let i = 0; i < 100; i += 1) {
    const found = subscriber.received.find((r) => r.headers["webhook-id"] === messageId);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return undefined;
}

describe("raw publish from stdin", () => {
  it.each([
    ["a BOM, bytes that are not UTF-8, and NUL", [0xef, 0xbb, 0xbf, 0x68, 0x69, 0xff, 0xfe, 0, 1]],
    ["whitespace only", [0x20, 0x0a, 0x09, 0x0d, 0x0a]],
    ["nothing: an empty message", []],
  ])("delivers stdin byte for byte: %s", async (_, values) => {
    const input = Uint8Array.from(values);
    const topic = topicName("bytes");
    await run(["topics", "create", topic]);
    await run(["subscribers", "add", topic, "--url", `${subscriber.url}/ok/bytes`]);
    const published = await json<{ id: string }>(
      ["publish", topic, "--content-type", "application/octet-stream"],
      { input },
    );
    const delivery = await deliveryOf(published.id);
    expect(delivery?.headers["content-type"]).toBe("application/octet-stream");
    expect(delivery?.bytes.toString("hex")).toBe(Buffer.from(input).toString("hex"));
  });

  it("refuses stdin that is not UTF-8 without --content-type", async () => {
    const result = await run(["publish", "t"], { input: Uint8Array.from([0x7b, 0xff, 0x7d]) });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("not valid UTF-8");
  });

  it("reads JSON from stdin after a BOM", async () => {
    const topic = topicName("bom-json");
    await run(["topics", "create", topic]);
    await run(["subscribers", "add", topic, "--url", `${subscriber.url}/ok/bom`]);
    const input = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"n":1}')]);
    const published = await json<{ id: string }>(["publish", topic], { input });
    expect((await deliveryOf(published.id))?.body).toBe('{"n":1}');
  });
});

describe("topic settings", () => {
  it("creates a topic that records only failures, and shows it", async () => {
    const topic = topicName("failures");
    const created = Topic.parse(await json(["topics", "create", topic, "--recording", "failures"]));
    expect(created).toMatchObject({ name: topic, recording: "failures" });
    const shown = await run(["topics", "show", topic]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^Recording:\s+failures$/m);
    const listed = await run(["topics", "list"]);
    expect(listed.stdout).toMatch(new RegExp(`${topic.replace(".", "\\.")}\\s+0\\s+failures\\s`));
  });

  it("updates the recording and the description, leaving what is not given", async () => {
    const topic = topicName("updated");
    await run(["topics", "create", topic, "--description", "Clicks"]);
    const updated = Topic.parse(await json(["topics", "update", topic, "--recording", "FAILURES"]));
    expect(updated).toMatchObject({ recording: "failures", description: "Clicks" });
    const described = await run(["topics", "update", topic, "--description", "All clicks"]);
    expect(described.code, described.stderr).toBe(0);
    expect(described.stdout).toMatch(/^Description:\s+All clicks$/m);
    expect(described.stdout).toMatch(/^Recording:\s+failures$/m);
    const back = Topic.parse(await json(["topics", "update", topic, "--recording", "full"]));
    expect(back.recording).toBe("full");
  });

  it("exits 1 when the topic to update does not exist", async () => {
    const result = await run(["topics", "update", "cli.never-created", "--recording", "full"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("Topic cli.never-created does not exist");
    expect(result.stderr).toContain("not_found, HTTP 404");
  });
});

describe("subscribers and dead letters", () => {
  it("updates, lists and removes a subscriber", async () => {
    const topic = topicName("subs");
    await run(["topics", "create", topic]);
    const { id } = await json<{ id: string }>([
      "subscribers",
      "add",
      topic,
      "--url",
      `${subscriber.url}/ok`,
    ]);
    const updated = await json<{ active: boolean; retry: { maxAttempts: number } }>([
      "subscribers",
      "update",
      id,
      "--inactive",
      "--max-attempts",
      "4",
    ]);
    expect(updated).toMatchObject({ active: false, retry: { maxAttempts: 4 } });
    const table = await run(["subscribers", "list", topic]);
    expect(table.stdout).toMatch(new RegExp(`${id}\\s+POST\\s+\\S+/ok\\s+no\\s+-`));
    const rotated = await json<{ secret: string }>(["subscribers", "rotate-secret", id]);
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(await run(["subscribers", "remove", id])).toMatchObject({
      code: 0,
      stdout: `Removed subscriber ${id}\n`,
    });
    expect(await json<unknown[]>(["subscribers", "list", topic])).toEqual([]);
  });

  it("lists a dead delivery and replays it", async () => {
    const topic = topicName("dead");
    await run(["topics", "create", topic]);
    const { id: subscriberId } = await json<{ id: string }>([
      "subscribers",
      "add",
      topic,
      "--url",
      `${subscriber.url}/fail`,
      "--max-attempts",
      "1",
    ]);
    const { id: messageId } = await json<{ id: string }>(["publish", topic, "--body", "{}"]);

    let dead: { id: string; messageId: string; lastStatus: number }[] = [];
    for (let i = 0; i < 100 && dead.length === 0; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      dead = await json(["dead-letters", "list", "--topic", topic]);
    }
    expect(dead).toMatchObject([{ messageId, lastStatus: 500 }]);
    const table = await run(["dead-letters", "list", "--subscriber", subscriberId]);
    expect(table.stdout).toMatch(new RegExp(`^ID\\s+MESSAGE.*\\n${dead[0]?.id}\\s+${messageId}`));

    const replayed = await run(["dead-letters", "replay", dead[0]?.id ?? ""]);
    expect(replayed).toMatchObject({ code: 0, stdout: "Replayed 1 dead letter\n" });
    const again = await run(["dead-letters", "replay", "--all", "--topic", topic, "--json"]);
    expect(JSON.parse(again.stdout)).toEqual({ replayed: expect.any(Number) });
  });

  it("pages a list with --limit, printing the cursor", async () => {
    const topic = topicName("pages");
    await run(["topics", "create", topic]);
    for (let i = 0; i < 3; i += 1) {
      await run(["subscribers", "add", topic, "--url", `${subscriber.url}/ok/${i}`]);
    }
    const page = await json<{ subscribers: unknown[]; nextCursor: string }>([
      "subscribers",
      "list",
      topic,
      "--limit",
      "2",
    ]);
    expect(page.subscribers).toHaveLength(2);
    const human = await run(["subscribers", "list", topic, "--limit", "2"]);
    expect(human.stderr).toContain(`More: --cursor ${page.nextCursor}`);
    const rest = await json<{ subscribers: unknown[]; nextCursor: null }>([
      "subscribers",
      "list",
      topic,
      "--limit",
      "2",
      "--cursor",
      page.nextCursor,
    ]);
    expect(rest).toMatchObject({ subscribers: [expect.anything()], nextCursor: null });
  });
});

describe("errors", () => {
  it("exits 1 with the problem's detail, code and request id", async () => {
    const topic = topicName("taken");
    await run(["topics", "create", topic]);
    const result = await run(["topics", "create", topic]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`switchboard: Topic ${topic} already exists`);
    expect(result.stderr).toMatch(/\(conflict, HTTP 409, request req_\S+\)/);
    expect(result.stdout).toBe("");
  });

  it("lists the fields of a validation failure", async () => {
    const topic = topicName("invalid");
    await run(["topics", "create", topic]);
    const result = await run([
      "subscribers",
      "add",
      topic,
      "--url",
      `${subscriber.url}/ok`,
      "--timeout-ms",
      "5",
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^ {2}- timeoutMs: /m);
  });

  it("prints the error as JSON on stderr with --json", async () => {
    const result = await run(["messages", "show", "msg_missing", "--json"]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stderr)).toEqual({
      error: {
        status: 404,
        code: "not_found",
        detail: expect.stringContaining("msg_missing"),
        requestId: expect.stringMatching(/^req_/),
        errors: [],
      },
    });
  });

  it("exits 1 on a wrong token", async () => {
    const result = await run(["topics", "list"], { env: { SWITCHBOARD_TOKEN: "wrong" } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("unauthorized, HTTP 401");
  });

  it("exits 1 when the broker cannot be reached", async () => {
    const result = await run(["topics", "list"], {
      env: { SWITCHBOARD_URL: "http://127.0.0.1:9" },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("(network_error)");
  });
});

describe("the built file", () => {
  it("runs on the machine's own node, outside npm's", async () => {
    const node = (process.env.PATH ?? "")
      .split(delimiter)
      .filter((dir) => dir !== "" && !dir.includes("node_modules"))
      .map((dir) => join(dir, "node"))
      .find((file) => existsSync(file));
    const result = await run(["topics", "list", "--json"], { node: node ?? process.execPath });
    expect(result, result.stderr).toMatchObject({ code: 0 });
    expect(JSON.parse(result.stdout)).toEqual(expect.any(Array));
  });

  it.skipIf(oldestNodeUnavailable)(
    `runs on Node ${OLDEST_NODE}, the oldest docs/sdk.md names`,
    async () => {
      const node = await oldestNode();
      const topic = topicName("oldest-node");
      const created = await json<{ name: string }>(["topics", "create", topic], { node });
      expect(created.name).toBe(topic);
      const published = await json<{ duplicate: boolean }>(["publish", topic, "--body", "{}"], {
        node,
      });
      expect(published.duplicate).toBe(false);
      const missing = await run(["topics", "show", "no-such-topic"], { node });
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain("not_found, HTTP 404");
    },
  );
});
