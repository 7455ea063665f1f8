/**
 * `npm run bench:profile`: where the Worker's CPU goes while it carries the throughput workload
 * (bench/throughput.ts, its inline topic: messages published in batches of 100 to a topic with one
 * subscriber without a filter, until the sink has them all). The runtime's inspector samples the Worker's isolate; the profile is
 * written as a `.cpuprofile` (open it in Chrome DevTools) and summed up here by function.
 *
 * "(idle)" is time the isolate waited: for the sink, and for local D1 and the local queues, which
 * run in other isolates of the same process and are not in this profile.
 *
 * `-- --messages N` (default 2,400), `--out FILE` (default in the system's temporary folder).
 */
import { writeFile } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { startBenchBroker } from "./lib/broker";
import { startSink } from "./lib/sink";
import { INLINE_WORKLOAD, prepareWorkload, publishAndDeliver } from "./throughput";

const TOP = 30;

const { values } = parseArgs({
  options: {
    messages: { type: "string", default: "2400" },
    out: { type: "string", default: join(tmpdir(), "switchboard.cpuprofile") },
  },
});
const messages = Number(values.messages);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** One DevTools-protocol session over the inspector's WebSocket. */
async function inspect(url: string) {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  let nextId = 0;
  const pending = new Map<number, (result: unknown) => void>();
  socket.on("message", (data) => {
    const reply = JSON.parse(String(data)) as { id?: number; result?: unknown };
    if (reply.id !== undefined) pending.get(reply.id)?.(reply.result);
  });
  return {
    send<T>(method: string, params: object = {}): Promise<T> {
      const id = ++nextId;
      socket.send(JSON.stringify({ id, method, params }));
      return new Promise((resolve) => pending.set(id, resolve as (result: unknown) => void));
    },
    close: () => socket.close(),
  };
}

/** Self time by function, and the share of the isolate's time it is. */
function summarize(profile: Profile): string[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, index) => {
    const frame = byId.get(id)?.callFrame;
    const delta = profile.timeDeltas[index] ?? 0;
    total += delta;
    if (!frame) return;
    const where = frame.url ? ` ${frame.url.split("/").at(-1)}:${frame.lineNumber + 1}` : "";
    const name = `${frame.functionName || "(anonymous)"}${where}`;
    self.set(name, (self.get(name) ?? 0) + delta);
  });
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP);
  return [
    `isolate time ${(total / 1000).toFixed(0)} ms; top ${TOP} functions by self time:`,
    ...rows.map(
      ([name, micros]) =>
        `${(micros / 1000).toFixed(1).padStart(8)} ms ${((micros / total) * 100).toFixed(1).padStart(5)} %  ${name}`,
    ),
  ];
}

/** A loopback port nothing listens on now, for the runtime's inspector. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function main(): Promise<void> {
  const sink = await startSink();
  const inspectorPort = await freePort();
  const broker = await startBenchBroker(undefined, { inspectorPort });
  try {
    await prepareWorkload(broker, sink, INLINE_WORKLOAD);
    const run = (count: number) => publishAndDeliver(broker, sink, INLINE_WORKLOAD, count);
    await run(200);

    const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as {
      webSocketDebuggerUrl: string;
    }[];
    const target = targets[0];
    if (!target) throw new Error("the runtime's inspector lists no Worker");
    const session = await inspect(target.webSocketDebuggerUrl);
    await session.send("Profiler.enable");
    await session.send("Profiler.setSamplingInterval", { interval: 200 });
    await session.send("Profiler.start");
    const started = performance.now();
    await run(messages);
    const elapsed = performance.now() - started;
    const { profile } = await session.send<{ profile: Profile }>("Profiler.stop");
    session.close();

    await writeFile(values.out, JSON.stringify(profile));
    console.log(`${messages} messages delivered in ${elapsed.toFixed(0)} ms`);
    for (const row of summarize(profile)) console.log(row);
    console.log(`profile: ${values.out}`);
  } finally {
    await broker.dispose();
    await sink.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
