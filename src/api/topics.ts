/** /v1/topics: create, list, read, change and delete topics. */
import { createRoute } from "@hono/zod-openapi";
import {
  deleteTopic,
  findTopic,
  insertTopic,
  listTopics,
  type TopicRecord,
  updateTopic,
} from "../db/topics";
import { requireAccess } from "./auth";
import { createRouter } from "./context";
import { jsonBody } from "./json-body";
import { decodeCursor, page } from "./pagination";
import { ApiError } from "./problem";
import { adminSecurity, commonErrors, conflictError } from "./responses";
import { PageQuery } from "./schemas/common";
import {
  RECORDING_DEFAULT,
  Topic,
  TopicInput,
  TopicList,
  TopicParams,
  TopicPatch,
} from "./schemas/topics";

const admin = requireAccess("admin");
const tags = ["Topics"];

/** A topic as the API shows it. */
export function topicView(record: TopicRecord): Topic {
  return {
    name: record.name,
    description: record.description,
    recording: record.recording,
    subscriberCount: record.subscriberCount,
    createdAt: new Date(record.createdAt).toISOString(),
  };
}

export const topicsApi = createRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/topics",
      tags,
      summary: "Create a topic",
      security: adminSecurity,
      middleware: [admin, jsonBody()] as const,
      request: {
        body: { content: { "application/json": { schema: TopicInput } }, required: true },
      },
      responses: {
        201: { description: "Created", content: { "application/json": { schema: Topic } } },
        ...commonErrors,
        ...conflictError,
      },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const topic = {
        name: input.name,
        description: input.description ?? null,
        recording: input.recording ?? RECORDING_DEFAULT,
        createdAt: Date.now(),
      };
      if (!(await insertTopic(c.get("db"), topic))) {
        throw new ApiError("conflict", `Topic ${input.name} already exists`);
      }
      return c.json(topicView({ ...topic, subscriberCount: 0 }), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/topics",
      tags,
      summary: "List topics in name order",
      security: adminSecurity,
      middleware: [admin] as const,
      request: { query: PageQuery },
      responses: {
        200: {
          description: "A page of topics",
          content: { "application/json": { schema: TopicList } },
        },
        ...commonErrors,
      },
    }),
    async (c) => {
      const { limit, cursor } = c.req.valid("query");
      const rows = await listTopics(c.get("db"), { after: decodeCursor(cursor), limit: limit + 1 });
      const { items, nextCursor } = page(rows, limit, (row) => row.name);
      return c.json({ topics: items.map(topicView), nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/topics/{topic}",
      tags,
      summary: "Read a topic",
      security: adminSecurity,
      middleware: [admin] as const,
      request: { params: TopicParams },
      responses: {
        200: { description: "The topic", content: { "application/json": { schema: Topic } } },
        ...commonErrors,
      },
    }),
    async (c) => {
      const { topic } = c.req.valid("param");
      const record = await findTopic(c.get("db"), topic);
      if (!record) throw topicNotFound(topic);
      return c.json(topicView(record), 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/topics/{topic}",
      tags,
      summary: "Change a topic; a new recording applies to messages published after it",
      security: adminSecurity,
      middleware: [admin, jsonBody()] as const,
      request: {
        params: TopicParams,
        body: { content: { "application/json": { schema: TopicPatch } }, required: true },
      },
      responses: {
        200: {
          description: "The updated topic",
          content: { "application/json": { schema: Topic } },
        },
        ...commonErrors,
      },
    }),
    async (c) => {
      const { topic } = c.req.valid("param");
      const record = await updateTopic(c.get("db"), topic, c.req.valid("json"));
      if (!record) throw topicNotFound(topic);
      return c.json(topicView(record), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/topics/{topic}",
      tags,
      summary: "Delete a topic, its subscribers and their pending deliveries",
      security: adminSecurity,
      middleware: [admin] as const,
      request: { params: TopicParams },
      responses: { 204: { description: "Deleted" }, ...commonErrors },
    }),
    async (c) => {
      const { topic } = c.req.valid("param");
      if (!(await deleteTopic(c.get("db"), topic))) throw topicNotFound(topic);
      return c.body(null, 204);
    },
  );

/** The 404 for a topic name that does not exist. */
export function topicNotFound(name: string): ApiError {
  return new ApiError("not_found", `Topic ${name} does not exist`);
}
