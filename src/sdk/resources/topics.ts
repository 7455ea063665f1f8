import { eachItem } from "../pagination";
import { type CallOptions, pathSegment, type SendRequest } from "../request";
import type { PageParams, Topic, TopicInput, TopicList, TopicPatch } from "../types";

/** `sb.topics`: create, list, read, change and delete topics. Admin token. */
export function topicsResource(request: SendRequest) {
  const list = (params: PageParams = {}, options?: CallOptions): Promise<TopicList> =>
    request({ method: "GET", path: "/v1/topics", query: params, idempotent: true, options });
  return {
    /**
     * Creates a topic; `conflict` if the name is taken. `recording` is `"full"` unless given
     * (see `RecordingMode`).
     *
     * @example await sb.topics.create({ name: "orders.created", description: "New orders" });
     * @example await sb.topics.create({ name: "clicks", recording: "failures" });
     */
    create(input: TopicInput, options?: CallOptions): Promise<Topic> {
      return request({
        method: "POST",
        path: "/v1/topics",
        json: input,
        idempotent: false,
        options,
      });
    },

    /**
     * One page of topics in name order: `{ topics, nextCursor }`. Pass `nextCursor` back as
     * `cursor` for the next page; it is `null` on the last one.
     *
     * @example const { topics, nextCursor } = await sb.topics.list({ limit: 20 });
     */
    list,

    /**
     * Every topic, fetching pages of `limit` as the loop reaches them.
     *
     * @example for await (const topic of sb.topics.listAll()) console.log(topic.name);
     */
    listAll(
      params: PageParams = {},
      options?: CallOptions,
    ): AsyncGenerator<Topic, void, undefined> {
      return eachItem(
        (cursor) => list({ ...params, cursor }, options),
        (page) => page.topics,
        params.cursor,
      );
    },

    /** A topic by name; `not_found` if there is none. */
    get(name: string, options?: CallOptions): Promise<Topic> {
      return request({ method: "GET", path: topicPath(name), idempotent: true, options });
    },

    /**
     * Changes a topic's `description` (`null` clears it) or `recording`; settings left out stay
     * as they are. A new recording applies to messages published after it. `not_found` if there
     * is no such topic.
     *
     * @example await sb.topics.update("clicks", { recording: "failures" });
     */
    update(name: string, patch: TopicPatch, options?: CallOptions): Promise<Topic> {
      return request({
        method: "PATCH",
        path: topicPath(name),
        json: patch,
        idempotent: true,
        options,
      });
    },

    /** Deletes a topic with its subscribers; their pending deliveries stop. */
    delete(name: string, options?: CallOptions): Promise<void> {
      return request({ method: "DELETE", path: topicPath(name), idempotent: true, options });
    },
  };
}

/** The methods of `sb.topics`. */
export type Topics = ReturnType<typeof topicsResource>;

/** `/v1/topics/{name}`, with the name encoded as one path segment. */
export function topicPath(name: string): string {
  return `/v1/topics/${pathSegment(name)}`;
}
