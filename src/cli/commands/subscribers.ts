import type { Subscriber, SubscriberPatch, SubscriberWithSecret } from "../../sdk/types";
import {
  type Command,
  type CommandContext,
  flag,
  integerOption,
  keyValues,
  type OptionDef,
  queryValues,
  requiredArg,
  stringOption,
  UsageError,
} from "../command";
import { fields, show } from "../output";
import { PAGE_DETAILS, pageOptions, pageRequest, printList } from "./pages";

const settingOptions: Record<string, OptionDef> = {
  url: {
    type: "string",
    value: "<url>",
    description: "Where deliveries go; :name or {name} segments take the message's pathParams",
  },
  filter: {
    type: "string",
    value: "<expr>",
    description: "Deliver only matching messages, e.g. 'body.total > 100' (\"\" for all)",
  },
  method: { type: "string", value: "<method>", description: "GET, POST, PUT, PATCH or DELETE" },
  header: {
    type: "string",
    multiple: true,
    value: "<name=value>",
    description: "A header sent with every delivery (repeatable)",
  },
  query: {
    type: "string",
    multiple: true,
    value: "<name=value>",
    description: "A query parameter added to every delivery (repeatable)",
  },
  "timeout-ms": { type: "string", value: "<ms>", description: "Per attempt, 1000–30000" },
  "max-attempts": { type: "string", value: "<n>", description: "Attempts before dead, 1–100" },
  "base-delay": { type: "string", value: "<s>", description: "First retry delay in seconds" },
  "max-delay": { type: "string", value: "<s>", description: "Longest retry delay in seconds" },
  description: { type: "string", value: "<text>", description: "What the subscriber is" },
  inactive: { type: "boolean", description: "Stop deliveries (pending ones are cancelled)" },
};

/** The settings given on the command line; absent options stay absent. */
function settingsOf(context: CommandContext): SubscriberPatch {
  const { values } = context;
  const retry = {
    maxAttempts: integerOption(values, "max-attempts"),
    baseDelaySeconds: integerOption(values, "base-delay"),
    maxDelaySeconds: integerOption(values, "max-delay"),
  };
  const patch: SubscriberPatch = {
    url: stringOption(values, "url"),
    filter: stringOption(values, "filter"),
    method: methodOf(stringOption(values, "method")),
    headers: keyValues(values, "header"),
    query: queryValues(values, "query"),
    timeoutMs: integerOption(values, "timeout-ms"),
    retry: Object.values(retry).some((value) => value !== undefined) ? retry : undefined,
    description: stringOption(values, "description"),
  };
  if (flag(values, "active") && flag(values, "inactive")) {
    throw new UsageError("Give --active or --inactive, not both");
  }
  if (flag(values, "active")) patch.active = true;
  if (flag(values, "inactive")) patch.active = false;
  // Options not given stay `undefined`, which JSON leaves out of the request body.
  return patch;
}

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;

/** A method name, upper-cased; the broker would refuse anything else anyway, but less clearly. */
export function methodOf(value: string | undefined): (typeof METHODS)[number] | undefined {
  if (value === undefined) return undefined;
  const method = METHODS.find((known) => known === value.toUpperCase());
  if (method === undefined) throw new UsageError(`--method must be one of ${METHODS.join(", ")}`);
  return method;
}

function subscriberFields(subscriber: Subscriber | SubscriberWithSecret): string {
  const pairs: [string, string][] = [
    ["Id", subscriber.id],
    ["Topic", subscriber.topic],
    ["URL", subscriber.url],
    ["Method", subscriber.method],
    ["Filter", show(subscriber.filter)],
    ["Active", subscriber.active ? "yes" : "no"],
    ["Headers", show(Object.keys(subscriber.headers).length ? subscriber.headers : null)],
    ["Query", show(Object.keys(subscriber.query).length ? subscriber.query : null)],
    ["Timeout", `${subscriber.timeoutMs} ms`],
    [
      "Retry",
      `${subscriber.retry.maxAttempts} attempts, ${subscriber.retry.baseDelaySeconds}–${subscriber.retry.maxDelaySeconds} s apart`,
    ],
    ["Description", show(subscriber.description)],
    ["Created", subscriber.createdAt],
    ["Updated", subscriber.updatedAt],
  ];
  if ("secret" in subscriber) pairs.push(["Secret", subscriber.secret]);
  return fields(pairs);
}

const add: Command = {
  words: ["subscribers", "add"],
  args: ["<topic>"],
  summary: "Add a subscriber to a topic and print its signing secret",
  details:
    "The secret is shown only now (and on rotate-secret): give it to the subscriber, which " +
    "verifies each delivery's webhook-signature with it.",
  options: settingOptions,
  examples: [
    "switchboard subscribers add orders.created --url https://api.example.com/hooks/orders \\\n" +
      "    --filter 'body.total > 100' --header x-api-key=secret --max-attempts 5",
  ],
  async run(context) {
    const topic = requiredArg(add, context.args, 0);
    const { url, ...settings } = settingsOf(context);
    if (url === undefined) throw new UsageError("subscribers add needs --url");
    const subscriber = await context.sb.subscribers.create(topic, { url, ...settings });
    if (context.out.json) return context.out.printJson(subscriber);
    context.out.line(subscriberFields(subscriber));
    context.out.note("Store the secret now: it is not shown again.");
  },
};

const list: Command = {
  words: ["subscribers", "list"],
  args: ["<topic>"],
  summary: "List a topic's subscribers in creation order",
  details: PAGE_DETAILS,
  options: pageOptions,
  async run(context) {
    const topic = requiredArg(list, context.args, 0);
    const { params } = pageRequest(context);
    await printList(context, {
      page: () => context.sb.subscribers.list(topic, params),
      itemsOf: (page) => page.subscribers,
      all: () => context.sb.subscribers.listAll(topic, params),
      header: ["ID", "METHOD", "URL", "ACTIVE", "FILTER"],
      toRow: (subscriber: Subscriber) => [
        subscriber.id,
        subscriber.method,
        subscriber.url,
        subscriber.active ? "yes" : "no",
        show(subscriber.filter),
      ],
      empty: `No subscribers on ${topic}`,
    });
  },
};

const showSubscriber: Command = {
  words: ["subscribers", "show"],
  args: ["<id>"],
  summary: "Show a subscriber (without its secret)",
  options: {},
  async run(context) {
    const subscriber = await context.sb.subscribers.get(
      requiredArg(showSubscriber, context.args, 0),
    );
    if (context.out.json) return context.out.printJson(subscriber);
    context.out.line(subscriberFields(subscriber));
  },
};

const update: Command = {
  words: ["subscribers", "update"],
  args: ["<id>"],
  summary: "Change a subscriber; options not given stay as they are",
  details: "--header and --query replace the whole set. Pending retries use the new settings.",
  options: {
    ...settingOptions,
    active: { type: "boolean", description: "Resume deliveries" },
  },
  examples: ["switchboard subscribers update sub_01J… --inactive"],
  async run(context) {
    const id = requiredArg(update, context.args, 0);
    const patch = settingsOf(context);
    if (Object.values(patch).every((value) => value === undefined))
      throw new UsageError("Give at least one setting to change");
    const subscriber = await context.sb.subscribers.update(id, patch);
    if (context.out.json) return context.out.printJson(subscriber);
    context.out.line(subscriberFields(subscriber));
  },
};

const remove: Command = {
  words: ["subscribers", "remove"],
  args: ["<id>"],
  summary: "Remove a subscriber; its pending retries stop",
  options: {},
  async run(context) {
    const id = requiredArg(remove, context.args, 0);
    await context.sb.subscribers.delete(id);
    if (context.out.json) return context.out.printJson({ deleted: id });
    context.out.line(`Removed subscriber ${id}`);
  },
};

const rotate: Command = {
  words: ["subscribers", "rotate-secret"],
  args: ["<id>"],
  summary: "Issue a new signing secret; the old one keeps signing beside it for 24 hours",
  options: {},
  async run(context) {
    const { secret } = await context.sb.subscribers.rotateSecret(
      requiredArg(rotate, context.args, 0),
    );
    if (context.out.json) return context.out.printJson({ secret });
    context.out.line(secret);
  },
};

/** `switchboard subscribers add|list|show|update|remove|rotate-secret`. */
export const subscriberCommands: readonly Command[] = [
  add,
  list,
  showSubscriber,
  update,
  remove,
  rotate,
];
