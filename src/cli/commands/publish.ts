import type { Envelope, PublishResult } from "../../sdk/types";
import {
  type Command,
  type CommandContext,
  integerOption,
  keyValues,
  queryValues,
  requiredArg,
  stringOption,
  UsageError,
} from "../command";
import { methodOf } from "./subscribers";

const publish: Command = {
  words: ["publish"],
  args: ["<topic>"],
  summary: "Publish a message to a topic",
  details:
    "The body is JSON, from --body or, without it, from stdin. With --content-type the body is " +
    "sent byte for byte instead (the raw endpoint), stdin's bytes undecoded, an empty stdin as " +
    "an empty message: then --header and --query apply, but not " +
    "--path-param, --method or --delay. Every publish carries an idempotency key (--idempotency-key, " +
    "or a fresh one), so the CLI's own retries never publish twice.",
  options: {
    body: { type: "string", value: "<json>", description: "The message body ('-' reads stdin)" },
    header: {
      type: "string",
      multiple: true,
      value: "<name=value>",
      description: "A header delivered with the message (repeatable)",
    },
    query: {
      type: "string",
      multiple: true,
      value: "<name=value>",
      description: "A query parameter; repeat a name for a list",
    },
    "path-param": {
      type: "string",
      multiple: true,
      value: "<name=value>",
      description: "Fills :name in subscriber URLs (repeatable)",
    },
    method: { type: "string", value: "<method>", description: "Overrides subscribers' method" },
    delay: {
      type: "string",
      value: "<s>",
      description: "Deliver no earlier than s seconds from now",
    },
    "idempotency-key": {
      type: "string",
      value: "<key>",
      description: "The same key within 24 h publishes nothing new",
    },
    "content-type": {
      type: "string",
      value: "<type>",
      description: "Publish the body as is, with this content type",
    },
  },
  examples: [
    `switchboard publish orders.created --body '{"orderId":42,"total":99.5}' --header x-tenant=acme`,
    "cat order.json | switchboard publish orders.created",
    "switchboard publish reports --content-type text/csv < report.csv",
    "cat invoice.pdf | switchboard publish invoices --content-type application/pdf",
  ],
  async run(context) {
    const topic = requiredArg(publish, context.args, 0);
    const idempotencyKey = stringOption(context.values, "idempotency-key");
    const contentType = stringOption(context.values, "content-type");
    let result: PublishResult;
    if (contentType !== undefined) {
      for (const option of ["path-param", "method", "delay"]) {
        if (context.values[option] !== undefined) {
          throw new UsageError(`--${option} cannot go with --content-type`);
        }
      }
      result = await context.sb.publishRaw(topic, (await bodyInput(context)) ?? "", {
        contentType,
        query: queryValues(context.values, "query"),
        forwardHeaders: keyValues(context.values, "header"),
        idempotencyKey,
      });
    } else {
      const text = jsonText(await bodyInput(context));
      result = await context.sb.publish(topic, envelopeOf(context, text), { idempotencyKey });
    }
    if (context.out.json) return context.out.printJson(result);
    context.out.line(
      result.duplicate
        ? `Already published as ${result.id} (same idempotency key); nothing new was sent`
        : `Published ${result.id} to ${result.topic}`,
    );
  },
};

/**
 * The body as given: `--body`'s text, or stdin's bytes undecoded, so that a raw publish sends
 * exactly what was piped in (a BOM, bytes that are not UTF-8, whitespace, or nothing at all,
 * which the raw endpoint takes as an empty message).
 */
async function bodyInput(context: CommandContext): Promise<string | Uint8Array | undefined> {
  const body = stringOption(context.values, "body");
  if (body !== undefined && body !== "-") return body;
  const stdin = await context.readStdin();
  if (body === "-" && stdin === undefined) throw new UsageError("--body - needs the body on stdin");
  return stdin;
}

/** The JSON text of an envelope's body; `undefined` (no body) when there is only whitespace. */
function jsonText(input: string | Uint8Array | undefined): string | undefined {
  const text = typeof input === "string" || input === undefined ? input : decodeUtf8(input);
  return text === undefined || text.trim() === "" ? undefined : text;
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    // JSON text is UTF-8 (RFC 8259); a leading BOM is dropped, as JSON parsers may do.
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new UsageError(
      "stdin is not valid UTF-8, so not JSON; use --content-type to send the bytes as they are",
    );
  }
}

function envelopeOf(context: CommandContext, text: string | undefined): Envelope {
  const { values } = context;
  return {
    body: text === undefined ? undefined : parseJson(text),
    headers: keyValues(values, "header"),
    query: queryValues(values, "query"),
    pathParams: keyValues(values, "path-param"),
    method: methodOf(stringOption(values, "method")),
    delaySeconds: integerOption(values, "delay"),
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new UsageError(
      `The body is not valid JSON (${reason}); use --content-type to send other text`,
    );
  }
}

/** `switchboard publish`. */
export const publishCommands: readonly Command[] = [publish];
