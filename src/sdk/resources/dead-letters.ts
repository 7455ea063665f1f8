import { eachItem } from "../pagination";
import { type CallOptions, pathSegment, type SendRequest } from "../request";
import type {
  DeadLetter,
  DeadLetterList,
  DeadLetterListParams,
  Replayed,
  ReplayFilter,
} from "../types";

/** `sb.deadLetters`: deliveries that ran out of attempts. Admin token. */
export function deadLettersResource(request: SendRequest) {
  const list = (
    params: DeadLetterListParams = {},
    options?: CallOptions,
  ): Promise<DeadLetterList> =>
    request({ method: "GET", path: "/v1/dead-letters", query: params, idempotent: true, options });
  return {
    /**
     * One page of dead letters, oldest first, optionally of one `topic` or `subscriberId`.
     *
     * @example const { deadLetters } = await sb.deadLetters.list({ topic: "orders.created" });
     */
    list,

    /**
     * Every dead letter matching `params`, fetching pages as the loop reaches them.
     *
     * @example for await (const dead of sb.deadLetters.listAll()) console.log(dead.lastError);
     */
    listAll(
      params: DeadLetterListParams = {},
      options?: CallOptions,
    ): AsyncGenerator<DeadLetter, void, undefined> {
      return eachItem(
        (cursor) => list({ ...params, cursor }, options),
        (page) => page.deadLetters,
        params.cursor,
      );
    },

    /**
     * Delivers a dead letter again, from attempt 1, to its subscriber as it is now; the dead
     * letter is removed. `conflict` if the subscriber is gone or inactive.
     */
    replay(id: string, options?: CallOptions): Promise<Replayed> {
      return request({
        method: "POST",
        path: `${deadLetterPath(id)}/replay`,
        idempotent: false,
        options,
      });
    },

    /**
     * Replays every dead letter, or those of a topic or subscriber. The broker replays at most
     * 5,000 per call: call again while `replayed` is 5,000.
     *
     * @example const { replayed } = await sb.deadLetters.replayAll({ topic: "orders.created" });
     */
    replayAll(filter: ReplayFilter = {}, options?: CallOptions): Promise<Replayed> {
      return request({
        method: "POST",
        path: "/v1/dead-letters/replay",
        json: filter,
        idempotent: false,
        options,
      });
    },

    /** Deletes a dead letter without replaying it. */
    delete(id: string, options?: CallOptions): Promise<void> {
      return request({ method: "DELETE", path: deadLetterPath(id), idempotent: true, options });
    },
  };
}

/** The methods of `sb.deadLetters`. */
export type DeadLetters = ReturnType<typeof deadLettersResource>;

function deadLetterPath(id: string): string {
  return `/v1/dead-letters/${pathSegment(id)}`;
}
