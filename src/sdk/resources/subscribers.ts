import { eachItem } from "../pagination";
import { type CallOptions, pathSegment, type SendRequest } from "../request";
import type {
  PageParams,
  RotatedSecret,
  Subscriber,
  SubscriberInput,
  SubscriberList,
  SubscriberPatch,
  SubscriberWithSecret,
} from "../types";
import { topicPath } from "./topics";

/** `sb.subscribers`: the endpoints a topic delivers to. Admin token. */
export function subscribersResource(request: SendRequest) {
  const list = (
    topic: string,
    params: PageParams = {},
    options?: CallOptions,
  ): Promise<SubscriberList> =>
    request({
      method: "GET",
      path: `${topicPath(topic)}/subscribers`,
      query: params,
      idempotent: true,
      options,
    });
  return {
    /**
     * Adds a subscriber to a topic. The answer is the only one (besides `rotateSecret`) that
     * shows the signing `secret`: store it where the subscriber can read it.
     *
     * @example
     * const { id, secret } = await sb.subscribers.create("orders.created", {
     *   url: "https://api.example.com/hooks/orders",
     *   filter: 'body.total > 100',
     * });
     */
    create(
      topic: string,
      input: SubscriberInput,
      options?: CallOptions,
    ): Promise<SubscriberWithSecret> {
      // Not retried after an ambiguous failure: a second create would add a second subscriber.
      return request({
        method: "POST",
        path: `${topicPath(topic)}/subscribers`,
        json: input,
        idempotent: false,
        options,
      });
    },

    /** One page of a topic's subscribers in creation order: `{ subscribers, nextCursor }`. */
    list,

    /**
     * Every subscriber of a topic, fetching pages as the loop reaches them.
     *
     * @example for await (const s of sb.subscribers.listAll("orders.created")) console.log(s.url);
     */
    listAll(
      topic: string,
      params: PageParams = {},
      options?: CallOptions,
    ): AsyncGenerator<Subscriber, void, undefined> {
      return eachItem(
        (cursor) => list(topic, { ...params, cursor }, options),
        (page) => page.subscribers,
        params.cursor,
      );
    },

    /** A subscriber by id, without its secret. */
    get(id: string, options?: CallOptions): Promise<Subscriber> {
      return request({ method: "GET", path: subscriberPath(id), idempotent: true, options });
    },

    /**
     * Changes any subset of a subscriber's settings; `retry` fields merge with the current ones.
     * Later attempts, pending retries included, use the new settings.
     *
     * @example await sb.subscribers.update(id, { active: false });
     */
    update(id: string, patch: SubscriberPatch, options?: CallOptions): Promise<Subscriber> {
      return request({
        method: "PATCH",
        path: subscriberPath(id),
        json: patch,
        idempotent: true,
        options,
      });
    },

    /** Deletes a subscriber; no further attempts go to it, pending retries included. */
    delete(id: string, options?: CallOptions): Promise<void> {
      return request({ method: "DELETE", path: subscriberPath(id), idempotent: true, options });
    },

    /**
     * Issues a new signing secret. The old one keeps signing beside it for 24 hours, so a
     * subscriber can verify with both (`verifyWebhook` takes an array) while it switches over.
     */
    rotateSecret(id: string, options?: CallOptions): Promise<RotatedSecret> {
      // Not retried after an ambiguous failure: a second rotation would retire the old secret
      // at once, before the subscriber knows the first new one.
      return request({
        method: "POST",
        path: `${subscriberPath(id)}/rotate-secret`,
        idempotent: false,
        options,
      });
    },
  };
}

/** The methods of `sb.subscribers`. */
export type Subscribers = ReturnType<typeof subscribersResource>;

function subscriberPath(id: string): string {
  return `/v1/subscribers/${pathSegment(id)}`;
}
