/**
 * What a CLI command is: its words, arguments and options (which also make its `--help`), and
 * the function that runs it over the SDK.
 */
import type { Switchboard } from "../sdk/client";
import type { Output } from "./output";

/** One `--option`. Strings may repeat (`multiple`), e.g. `--header a=1 --header b=2`. */
export interface OptionDef {
  type: "string" | "boolean";
  multiple?: boolean;
  short?: string;
  /** The placeholder in help, e.g. `<url>`. */
  value?: string;
  description: string;
}

/** Parsed option values, as node:util `parseArgs` returns them. */
export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** What a command's `run` gets. */
export interface CommandContext {
  sb: Switchboard;
  /** The positional arguments after the command words. */
  args: string[];
  values: Values;
  out: Output;
  /** The whole of stdin as bytes, undecoded, or `undefined` when stdin is a terminal. */
  readStdin(): Promise<Uint8Array | undefined>;
}

/** A command: `words` select it, `args` and `options` are what it takes, `run` does it. */
export interface Command {
  /** The command words, e.g. `["topics", "create"]` or `["publish"]`. */
  words: readonly string[];
  /** Positional arguments as help shows them, e.g. `["<name>"]`; `[...]` ones are optional. */
  args: readonly string[];
  summary: string;
  /** More paragraphs for `--help`. */
  details?: string;
  options: Record<string, OptionDef>;
  examples?: readonly string[];
  run(context: CommandContext): Promise<void>;
}

/** A mistake in how the CLI was called: exit code 2 and a pointer to `--help`. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** A string option's value, if given. */
export function stringOption(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === "string" ? value : undefined;
}

/** Every value of a repeatable string option. */
export function stringList(values: Values, name: string): string[] {
  const value = values[name];
  if (!Array.isArray(value)) return typeof value === "string" ? [value] : [];
  return value.filter((item): item is string => typeof item === "string");
}

/** Whether a boolean option was given. */
export function flag(values: Values, name: string): boolean {
  return values[name] === true;
}

/** A whole-number option, if given; anything else is a usage error. */
export function integerOption(values: Values, name: string): number | undefined {
  const value = stringOption(values, name);
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value.trim())) throw new UsageError(`--${name} must be a whole number`);
  return Number(value);
}

/** `k=v` pairs into an object; the first `=` splits, so values may contain more. */
export function keyValues(values: Values, name: string): Record<string, string> | undefined {
  const pairs = stringList(values, name);
  if (pairs.length === 0) return undefined;
  return Object.fromEntries(pairs.map((pair) => splitPair(pair, name)));
}

/** `k=v` pairs into a query: a name given twice becomes a list. */
export function queryValues(
  values: Values,
  name: string,
): Record<string, string | string[]> | undefined {
  const pairs = stringList(values, name);
  if (pairs.length === 0) return undefined;
  const query: Record<string, string | string[]> = {};
  for (const pair of pairs) {
    const [key, value] = splitPair(pair, name);
    const current = query[key];
    query[key] = current === undefined ? value : [...[current].flat(), value];
  }
  return query;
}

function splitPair(pair: string, name: string): [string, string] {
  const at = pair.indexOf("=");
  if (at <= 0) throw new UsageError(`--${name} takes name=value, got ${JSON.stringify(pair)}`);
  return [pair.slice(0, at), pair.slice(at + 1)];
}

/** The positional argument at `index`, which the command requires. */
export function requiredArg(command: Command, args: string[], index: number): string {
  const value = args[index];
  if (value === undefined || value === "") {
    throw new UsageError(
      `${command.words.join(" ")} needs ${command.args[index] ?? "an argument"}`,
    );
  }
  return value;
}
