/**
 * The CLI without Node: arguments in, exit code out. Finds the command, parses its options,
 * prints help, runs it over the SDK, and turns every failure into a message and an exit code:
 * 0 success, 1 the broker refused the call or could not be reached, 2 a usage error (arguments
 * the SDK cannot send included).
 */
import { Switchboard } from "../sdk/client";
import { SwitchboardError } from "../sdk/errors";
import { VERSION } from "../version";
import { type Command, flag, UsageError, type Values } from "./command";
import { deadLetterCommands } from "./commands/dead-letters";
import { messageCommands } from "./commands/messages";
import { publishCommands } from "./commands/publish";
import { subscriberCommands } from "./commands/subscribers";
import { topicCommands } from "./commands/topics";
import { commandHelp, GLOBAL_OPTIONS, groupHelp, mainHelp } from "./help";
import { createOutput } from "./output";

/** node:util `parseArgs`, as far as the CLI uses it. */
export type ParseArgs = (config: {
  args: string[];
  options: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }>;
  allowPositionals: boolean;
  strict: boolean;
}) => { values: Values; positionals: string[] };

/** What the CLI needs from its host: Node's process in `index.ts`, anything in a test. */
export interface CliIo {
  /** The arguments after `switchboard`. */
  argv: readonly string[];
  env: Record<string, string | undefined>;
  stdout(text: string): void;
  stderr(text: string): void;
  /** The whole of stdin as bytes, or `undefined` when it is a terminal. */
  readStdin(): Promise<Uint8Array | undefined>;
  parseArgs: ParseArgs;
}

/** Every command, in the order help lists them. */
export const COMMANDS: readonly Command[] = [
  ...topicCommands,
  ...subscriberCommands,
  ...publishCommands,
  ...messageCommands,
  ...deadLetterCommands,
];

const HELP_FLAGS = new Set(["--help", "-h", "help"]);

/** Runs one CLI invocation and resolves with its exit code. */
export async function main(io: CliIo): Promise<number> {
  const json = io.argv.includes("--json");
  try {
    const found = findCommand(io);
    if (typeof found === "number") return found;
    const { command, rest } = found;
    const { values, positionals } = parse(io, command, rest);
    if (flag(values, "help")) {
      io.stdout(commandHelp(command));
      return 0;
    }
    if (positionals.length > command.args.length) {
      throw new UsageError(
        `Unexpected argument ${JSON.stringify(positionals[command.args.length])}`,
      );
    }
    await command.run({
      sb: client(io.env),
      args: positionals,
      values,
      out: createOutput(json, io.stdout, io.stderr),
      readStdin: io.readStdin,
    });
    return 0;
  } catch (error) {
    return report(error, json, io.stderr);
  }
}

/** The command and its arguments, or an exit code when only help or the version was asked. */
function findCommand(io: CliIo): { command: Command; rest: string[] } | number {
  const [first, second] = io.argv;
  if (first === undefined) {
    io.stderr(mainHelp(COMMANDS));
    return 2;
  }
  if (HELP_FLAGS.has(first)) {
    io.stdout(mainHelp(COMMANDS));
    return 0;
  }
  if (first === "--version") {
    io.stdout(`${VERSION}\n`);
    return 0;
  }
  const group = COMMANDS.filter((command) => command.words[0] === first);
  const single = group.length === 1 && group[0]?.words.length === 1 ? group[0] : undefined;
  if (single) return { command: single, rest: io.argv.slice(1) };
  if (group.length === 0) throw new UsageError(`Unknown command ${JSON.stringify(first)}`);
  if (second === undefined || HELP_FLAGS.has(second)) {
    (second === undefined ? io.stderr : io.stdout)(groupHelp(first, group));
    return second === undefined ? 2 : 0;
  }
  const command = group.find((candidate) => candidate.words[1] === second);
  if (!command) throw new UsageError(`Unknown command ${JSON.stringify(`${first} ${second}`)}`);
  return { command, rest: io.argv.slice(2) };
}

function parse(io: CliIo, command: Command, args: string[]) {
  const options = { ...command.options, ...GLOBAL_OPTIONS };
  try {
    return io.parseArgs({
      args,
      options: Object.fromEntries(
        Object.entries(options).map(([name, { type, multiple, short }]) => [
          name,
          { type, ...(multiple ? { multiple } : {}), ...(short ? { short } : {}) },
        ]),
      ),
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    // parseArgs explains unknown options and missing values well; only the prefix is ours.
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

function client(env: CliIo["env"]): Switchboard {
  const baseUrl = env.SWITCHBOARD_URL;
  const token = env.SWITCHBOARD_TOKEN;
  if (!baseUrl || !token) {
    throw new UsageError("Set SWITCHBOARD_URL and SWITCHBOARD_TOKEN to reach a broker");
  }
  try {
    return new Switchboard({ baseUrl, token });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new UsageError(`SWITCHBOARD_URL and SWITCHBOARD_TOKEN: ${reason}`);
  }
}

function report(error: unknown, json: boolean, stderr: (text: string) => void): number {
  // Arguments the SDK could not send, such as a header value outside Latin-1, are how the CLI
  // was called, not an answer from the broker.
  if (error instanceof SwitchboardError && error.code === "invalid_request") {
    return report(new UsageError(error.detail), json, stderr);
  }
  if (error instanceof UsageError) {
    stderr(
      json
        ? `${JSON.stringify({ error: { code: "usage", detail: error.message } })}\n`
        : `switchboard: ${error.message}\nRun "switchboard --help" for usage.\n`,
    );
    return 2;
  }
  if (!(error instanceof SwitchboardError)) throw error;
  if (json) {
    const { status, code, detail, requestId, errors } = error;
    stderr(`${JSON.stringify({ error: { status, code, detail, requestId, errors } })}\n`);
    return 1;
  }
  const where = [
    error.code,
    error.status === undefined ? undefined : `HTTP ${error.status}`,
    error.requestId === undefined ? undefined : `request ${error.requestId}`,
  ].filter((part) => part !== undefined);
  const lines = [`switchboard: ${error.detail}`, `  (${where.join(", ")})`];
  for (const field of error.errors) lines.push(`  - ${field.path || "body"}: ${field.message}`);
  stderr(`${lines.join("\n")}\n`);
  return 1;
}
