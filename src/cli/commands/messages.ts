import type { Delivery } from "../../sdk/types";
import { type Command, requiredArg } from "../command";
import { fields, show, table } from "../output";

const showMessage: Command = {
  words: ["messages", "show"],
  args: ["<id>"],
  summary: "Show a message's fan-out and the state of each delivery",
  details:
    "matched and filtered are empty until the message is fanned out. A delivery is pending, " +
    "retrying, delivered, dead (see dead-letters) or cancelled.",
  options: {},
  examples: ["switchboard messages show msg_01JDQ3Y5N6M7P8Q9R0S1T2V3W4"],
  async run(context) {
    const message = await context.sb.messages.get(requiredArg(showMessage, context.args, 0));
    if (context.out.json) return context.out.printJson(message);
    context.out.line(
      fields([
        ["Id", message.id],
        ["Topic", message.topic],
        ["Published", message.publishedAt],
        ["State", message.state],
        ["Matched", show(message.matched)],
        ["Filtered out", show(message.filtered)],
      ]),
    );
    if (message.deliveries.length === 0) return;
    context.out.line("");
    context.out.line(
      table(
        ["SUBSCRIBER", "STATE", "ATTEMPTS", "LAST STATUS", "LAST ERROR", "NEXT ATTEMPT"],
        message.deliveries.map((delivery: Delivery) => [
          delivery.subscriberId,
          delivery.state,
          String(delivery.attempts),
          show(delivery.lastStatus),
          show(delivery.lastError),
          show(delivery.nextAttemptAt),
        ]),
      ),
    );
  },
};

/** `switchboard messages show`. */
export const messageCommands: readonly Command[] = [showMessage];
