#!/usr/bin/env node
/**
 * The `switchboard` executable: Node's process wired to the CLI in `main.ts`. This is the only
 * file that touches Node.
 */
import { main, type ParseArgs } from "./main";

/**
 * The part of Node's `process` the CLI uses. Declared here rather than taken from @types/node:
 * src/ is type-checked for workerd, and Node's globals must not leak into the Worker's types.
 */
interface NodeProcess {
  argv: string[];
  env: Record<string, string | undefined>;
  exitCode: number | undefined;
  stdout: { write(text: string): boolean };
  stderr: { write(text: string): boolean };
  stdin: AsyncIterable<Uint8Array> & { isTTY?: boolean };
}
declare const process: NodeProcess;

// Not a string literal, so that TypeScript does not look for Node's module types (see above);
// Node resolves it at run time as usual.
const NODE_UTIL = "node:util";
const { parseArgs } = (await import(NODE_UTIL)) as { parseArgs: ParseArgs };

/** Stdin's bytes as they came: a raw publish sends them unchanged, so nothing decodes here. */
async function readStdin(): Promise<Uint8Array | undefined> {
  if (process.stdin.isTTY) return undefined;
  const chunks: Uint8Array[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return new Uint8Array(await new Blob(chunks).arrayBuffer());
}

// exitCode, not exit(): the process ends once stdout has been flushed.
process.exitCode = await main({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  readStdin,
  parseArgs,
});
