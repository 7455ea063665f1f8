import type { DeadLetter } from "../../sdk/types";
import { type Command, flag, requiredArg, stringOption, UsageError } from "../command";
import { PAGE_DETAILS, pageOptions, pageRequest, printList } from "./pages";

const list: Command = {
  words: ["dead-letters", "list"],
  args: [],
  summary: "List deliveries that ran out of attempts, oldest first",
  details: PAGE_DETAILS,
  options: {
    topic: { type: "string", value: "<topic>", description: "Only this topic's" },
    subscriber: { type: "string", value: "<id>", description: "Only this subscriber's" },
    ...pageOptions,
  },
  async run(context) {
    const params = {
      ...pageRequest(context).params,
      topic: stringOption(context.values, "topic"),
      subscriberId: stringOption(context.values, "subscriber"),
    };
    await printList(context, {
      page: () => context.sb.deadLetters.list(params),
      itemsOf: (page) => page.deadLetters,
      all: () => context.sb.deadLetters.listAll(params),
      header: ["ID", "MESSAGE", "TOPIC", "SUBSCRIBER", "ATTEMPTS", "LAST STATUS", "LAST ERROR"],
      toRow: (dead: DeadLetter) => [
        dead.id,
        dead.messageId,
        dead.topic,
        dead.subscriberId,
        String(dead.attempts),
        dead.lastStatus === null ? "-" : String(dead.lastStatus),
        dead.lastError ?? "-",
      ],
      empty: "No dead letters",
    });
  },
};

const replay: Command = {
  words: ["dead-letters", "replay"],
  args: ["[id]"],
  summary: "Deliver dead letters again, from attempt 1, to their subscribers as they are now",
  details:
    "Give one dead letter's id, or --all (optionally with --topic or --subscriber). Dead letters " +
    "whose subscriber is gone or inactive are not replayed. One call replays at most 5,000.",
  options: {
    all: { type: "boolean", description: "Replay every dead letter (or the filtered ones)" },
    topic: { type: "string", value: "<topic>", description: "With --all: only this topic's" },
    subscriber: {
      type: "string",
      value: "<id>",
      description: "With --all: only this subscriber's",
    },
  },
  examples: [
    "switchboard dead-letters replay dlq_01JDQ3Y5N6M7P8Q9R0S1T2V3W4",
    "switchboard dead-letters replay --all --topic orders.created",
  ],
  async run(context) {
    const [id] = context.args;
    const all = flag(context.values, "all");
    const topic = stringOption(context.values, "topic");
    const subscriberId = stringOption(context.values, "subscriber");
    if ((id === undefined) === !all) throw new UsageError("Give a dead letter's id or --all");
    if (id !== undefined && (topic !== undefined || subscriberId !== undefined)) {
      throw new UsageError("--topic and --subscriber go with --all");
    }
    const { replayed } =
      id === undefined
        ? await context.sb.deadLetters.replayAll({ topic, subscriberId })
        : await context.sb.deadLetters.replay(id);
    if (context.out.json) return context.out.printJson({ replayed });
    context.out.line(`Replayed ${replayed} dead letter${replayed === 1 ? "" : "s"}`);
  },
};

const remove: Command = {
  words: ["dead-letters", "delete"],
  args: ["<id>"],
  summary: "Delete a dead letter without replaying it",
  options: {},
  async run(context) {
    const id = requiredArg(remove, context.args, 0);
    await context.sb.deadLetters.delete(id);
    if (context.out.json) return context.out.printJson({ deleted: id });
    context.out.line(`Deleted dead letter ${id}`);
  },
};

/** `switchboard dead-letters list|replay|delete`. */
export const deadLetterCommands: readonly Command[] = [list, replay, remove];
