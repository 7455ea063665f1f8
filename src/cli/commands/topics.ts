import type { Topic } from "../../sdk/types";
import { type Command, requiredArg, stringOption } from "../command";
import { fields, show } from "../output";
import { PAGE_DETAILS, pageOptions, pageRequest, printList } from "./pages";

const create: Command = {
  words: ["topics", "create"],
  args: ["<name>"],
  summary: "Create a topic",
  details: "A name is 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit.",
  options: {
    description: { type: "string", value: "<text>", description: "What the topic carries" },
  },
  examples: ['switchboard topics create orders.created --description "New orders"'],
  async run(context) {
    const name = requiredArg(create, context.args, 0);
    const description = stringOption(context.values, "description");
    const topic = await context.sb.topics.create({ name, description });
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
      header: ["NAME", "SUBSCRIBERS", "CREATED", "DESCRIPTION"],
      toRow: (topic: Topic) => [
        topic.name,
        String(topic.subscriberCount),
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
    context.out.line(
      fields([
        ["Name", topic.name],
        ["Description", show(topic.description)],
        ["Subscribers", String(topic.subscriberCount)],
        ["Created", topic.createdAt],
      ]),
    );
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

/** `switchboard topics create|list|show|delete`. */
export const topicCommands: readonly Command[] = [create, list, showTopic, remove];
