import { type CallOptions, pathSegment, type SendRequest } from "../request";
import type { MessageStatus } from "../types";

/** `sb.messages`: what became of a published message. Admin or publish token. */
export function messagesResource(request: SendRequest) {
  return {
    /**
     * A message's fan-out (`matched`, `filtered`) and the state of each delivery.
     *
     * @example
     * const { id } = await sb.publish("orders.created", { body: { orderId: 42 } });
     * const status = await sb.messages.get(id);
     * status.deliveries.every((d) => d.state === "delivered");
     */
    get(id: string, options?: CallOptions): Promise<MessageStatus> {
      return request({
        method: "GET",
        path: `/v1/messages/${pathSegment(id)}`,
        idempotent: true,
        options,
      });
    },
  };
}

/** The methods of `sb.messages`. */
export type Messages = ReturnType<typeof messagesResource>;
