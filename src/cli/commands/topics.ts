import type { RecordingMode, Topic, TopicPatch } from "../../sdk/types";
import {
  type Command,
  type CommandContext,
  type OptionDef,
  requiredArg,
  stringOption,
  UsageError,
} from "../command";
import { fields, show } from "../output";
import { PAGE_DETAILS, pageOptions, pageRequest, printList } from "./pages";

/** Each recording mode with what it keeps; `satisfies` fails the build if the API adds one. */
const RECORDINGS = {
  full: "every message and delivery can be read back (messages show)",
  failures: "only retried deliveries and dead letters, with per-minute counts",
} satisfies Record<RecordingMode, string>;

const RECORDING_DETAILS =
  `--recording full: ${RECORDINGS.full}. --recording failures: ${RECORDINGS.failures}; a ` +
  "message delivered at its first attempt leaves no record, so messages show answers not found.";

const descriptionOption: OptionDef = {
  type: "string",
  value: "<text>",
  description: "What the topic carries",
};

const recordingOption = (description: string): OptionDef => ({
  type: "string",
  value: "<mode>",
  description,
});

/** A recording mode, lower-cased; the broker would refuse another, but less clearly. */
function recordingOf(value: string | undefined): RecordingMode | undefined {
  if (value === undefined) return undefined;
  const mode = value.toLowerCase();
  if (!isRecording(mode)) {
    throw new UsageError(`--recording must be one of ${Object.keys(RECORDINGS).join(", ")}`);
  }
  return mode;
}

function isRecording(value: string): value is RecordingMode {
  return Object.hasOwn(RECORDINGS, value);
}

/** The settings given on the command line; absent options stay absent. */
function settingsOf(context: CommandContext): TopicPatch {
  return {
    description: stringOption(context.values, "description"),
    recording: recordingOf(stringOption(context.values, "recording")),
  };
}

function topicFields(topic: Topic): string {
  return fields([
    ["Name", topic.name],
    ["Description", show(topic.description)],
    ["Recording", topic.recording],
    ["Subscribers", String(topic.subscriberCount)],
    ["Created", topic.createdAt],
  ]);
}

const create: Command = {
  words: ["topics", "create"],
  args: ["<name>"],
  summary: "Create a topic",
  details:
    "A name is 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit. " +
    RECORDING_DETAILS,
  options: {
    description: descriptionOption,
    recording: recordingOption("full (the default) or failures: what the broker records"),
  },
  examples: [
    'switchboard topics create orders.created --description "New orders"',
    "switchboard topics create clicks --recording failures",
  ],
  async run(context) {
    const name = requiredArg(create, context.args, 0);
    const topic = await context.sb.topics.create({ name, ...settingsOf(context) });
    if (context.out.json) return context.out.printJson(topic);
    context.out.line(`Created topic ${topic.name}`);
  },
};

const list: Command = {
  words: ["topics", "list"],
  args: [],
  summary: "List topics in name order",
  details: PAGE_DETAILS,
  options: pageOptions,
  examples: ["switchboard topics list", "switchboard topics list --json | jq -r '.[].name'"],
  async run(context) {
    const { params } = pageRequest(context);
    await printList(context, {
      page: () => context.sb.topics.list(params),
      itemsOf: (page) => page.topics,
      all: () => context.sb.topics.listAll(params),
      header: ["NAME", "SUBSCRIBERS", "RECORDING", "CREATED", "DESCRIPTION"],
      toRow: (topic: Topic) => [
        topic.name,
        String(topic.subscriberCount),
        topic.recording,
        topic.createdAt,
        show(topic.description),
      ],
      empty: "No topics",
    });
  },
};

const showTopic: Command = {
  words: ["topics", "show"],
  args: ["<name>"],
  summary: "Show a topic",
  options: {},
  async run(context) {
    const topic = await context.sb.topics.get(requiredArg(showTopic, context.args, 0));
    if (context.out.json) return context.out.printJson(topic);
    context.out.line(topicFields(topic));
  },
};

const update: Command = {
  words: ["topics", "update"],
  args: ["<name>"],
  summary: "Change a topic; options not given stay as they are",
  details: `A new recording applies to messages published after it. ${RECORDING_DETAILS}`,
  options: {
    description: descriptionOption,
    recording: recordingOption("full or failures: what the broker records"),
  },
  examples: [
    "switchboard topics update clicks --recording failures",
    'switchboard topics update orders.created --description "Orders, once paid"',
  ],
  async run(context) {
    const name = requiredArg(update, context.args, 0);
    const patch = settingsOf(context);
    if (Object.values(patch).every((value) => value === undefined))
      throw new UsageError("Give at least one setting to change");
    const topic = await context.sb.topics.update(name, patch);
    if (context.out.json) return context.out.printJson(topic);
    context.out.line(topicFields(topic));
  },
};

const remove: Command = {
  words: ["topics", "delete"],
  args: ["<name>"],
  summary: "Delete a topic with its subscribers; their pending deliveries stop",
  options: {},
  async run(context) {
    const name = requiredArg(remove, context.args, 0);
    await context.sb.topics.delete(name);
    if (context.out.json) return context.out.printJson({ deleted: name });
    context.out.line(`Deleted topic ${name}`);
  },
};

/** `switchboard topics create|list|show|update|delete`. */
export const topicCommands: readonly Command[] = [create, list, showTopic, update, remove];
