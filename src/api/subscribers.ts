/** Subscribers: created under a topic, then addressed by id. */
import { createRoute } from "@hono/zod-openapi";
import { newId } from "../db/ids";
import type { SubscriberRow } from "../db/schema";
import {
  deleteSubscriber,
  findSubscriber,
  insertSubscriber,
  listSubscribers,
  rotateSubscriberSecret,
  type SubscriberChanges,
  updateSubscriber,
} from "../db/subscribers";
import { findTopic } from "../db/topics";
import { generateSecret } from "../delivery/signature";
import { normalizeHeaders } from "../http/headers";
import { requireAccess } from "./auth";
import { createRouter } from "./context";
import { jsonBody } from "./json-body";
import { decodeCursor, page } from "./pagination";
import { ApiError } from "./problem";
import { adminSecurity, commonErrors, json } from "./responses";
import { PageQuery } from "./schemas/common";
import {
  RETRY_DEFAULTS,
  RotatedSecret,
  Subscriber,
  SubscriberInput,
  SubscriberList,
  SubscriberParams,
  SubscriberPatch,
  SubscriberWithSecret,
  TIMEOUT_DEFAULT_MS,
} from "./schemas/subscribers";
import { TopicParams } from "./schemas/topics";
import { assertUrlAllowed, normalizeFilter } from "./subscriber-rules";
import { topicNotFound } from "./topics";

/** How long the previous secret keeps signing beside the new one after a rotation. */
export const SECRET_OVERLAP_MS = 24 * 60 * 60 * 1000;

const admin = requireAccess("admin");
const tags = ["Subscribers"];

/** A subscriber as the API shows it: never with its secret. */
export function subscriberView(row: SubscriberRow): Subscriber {
  return {
    id: row.id,
    topic: row.topic,
    url: row.url,
    filter: row.filter,
    method: row.method,
    headers: row.headers,
    query: row.query,
    timeoutMs: row.timeoutMs,
    retry: {
      maxAttempts: row.maxAttempts,
      baseDelaySeconds: row.baseDelaySeconds,
      maxDelaySeconds: row.maxDelaySeconds,
    },
    active: row.active,
    description: row.description,
    createdAt: new Date(row.createdAt).toISOString(),
    updatedAt: new Date(row.updatedAt).toISOString(),
  };
}

export const subscribersApi = createRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/topics/{topic}/subscribers",
      tags,
      summary: "Add a subscriber to a topic; the answer is the only one that shows its secret",
      security: adminSecurity,
      middleware: [admin, jsonBody()] as const,
      request: { params: TopicParams, body: { ...json(SubscriberInput), required: true } },
      responses: {
        201: { description: "Created", ...json(SubscriberWithSecret) },
        ...commonErrors,
      },
    }),
    async (c) => {
      const { topic } = c.req.valid("param");
      const input = c.req.valid("json");
      assertUrlAllowed(input.url, c.get("config").allowPrivateUrls);
      const now = Date.now();
      const row: SubscriberRow = {
        id: newId("sub", now),
        topic,
        url: input.url,
        filter: normalizeFilter(input.filter),
        method: input.method ?? "POST",
        headers: normalizeHeaders(input.headers ?? {}),
        query: input.query ?? {},
        timeoutMs: input.timeoutMs ?? TIMEOUT_DEFAULT_MS,
        maxAttempts: input.retry?.maxAttempts ?? RETRY_DEFAULTS.maxAttempts,
        baseDelaySeconds: input.retry?.baseDelaySeconds ?? RETRY_DEFAULTS.baseDelaySeconds,
        maxDelaySeconds: input.retry?.maxDelaySeconds ?? RETRY_DEFAULTS.maxDelaySeconds,
        active: input.active ?? true,
        deactivatedAt: null,
        description: input.description ?? null,
        secret: generateSecret(),
        previousSecret: null,
        previousSecretExpiresAt: null,
        version: 1,
        createdAt: now,
        updatedAt: now,
      };
      if (!(await insertSubscriber(c.get("db"), row))) throw topicNotFound(topic);
      return c.json({ ...subscriberView(row), secret: row.secret }, 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/topics/{topic}/subscribers",
      tags,
      summary: "List a topic's subscribers in creation order",
      security: adminSecurity,
      middleware: [admin] as const,
      request: { params: TopicParams, query: PageQuery },
      responses: {
        200: { description: "A page of subscribers", ...json(SubscriberList) },
        ...commonErrors,
      },
    }),
    async (c) => {
      const { topic } = c.req.valid("param");
      const { limit, cursor } = c.req.valid("query");
      const db = c.get("db");
      const after = decodeCursor(cursor);
      const [record, rows] = await Promise.all([
        findTopic(db, topic),
        listSubscribers(db, { topic, after, limit: limit + 1 }),
      ]);
      if (!record) throw topicNotFound(topic);
      const { items, nextCursor } = page(rows, limit, (row) => row.id);
      return c.json({ subscribers: items.map(subscriberView), nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/subscribers/{id}",
      tags,
      summary: "Read a subscriber (without its secret)",
      security: adminSecurity,
      middleware: [admin] as const,
      request: { params: SubscriberParams },
      responses: { 200: { description: "The subscriber", ...json(Subscriber) }, ...commonErrors },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const row = await findSubscriber(c.get("db"), id);
      if (!row) throw subscriberNotFound(id);
      return c.json(subscriberView(row), 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/subscribers/{id}",
      tags,
      summary: "Change a subscriber; later attempts use the new settings",
      security: adminSecurity,
      middleware: [admin, jsonBody()] as const,
      request: { params: SubscriberParams, body: { ...json(SubscriberPatch), required: true } },
      responses: {
        200: { description: "The updated subscriber", ...json(Subscriber) },
        ...commonErrors,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const patch = c.req.valid("json");
      const db = c.get("db");
      const current = await findSubscriber(db, id);
      if (!current) throw subscriberNotFound(id);
      if (patch.url !== undefined) assertUrlAllowed(patch.url, c.get("config").allowPrivateUrls);

      const changes: SubscriberChanges = { updatedAt: Math.max(Date.now(), current.updatedAt) };
      if (patch.url !== undefined) changes.url = patch.url;
      if (patch.filter !== undefined) changes.filter = normalizeFilter(patch.filter);
      if (patch.method !== undefined) changes.method = patch.method;
      if (patch.headers !== undefined) changes.headers = normalizeHeaders(patch.headers);
      if (patch.query !== undefined) changes.query = patch.query;
      if (patch.timeoutMs !== undefined) changes.timeoutMs = patch.timeoutMs;
      if (patch.retry?.maxAttempts !== undefined) changes.maxAttempts = patch.retry.maxAttempts;
      if (patch.retry?.baseDelaySeconds !== undefined) {
        changes.baseDelaySeconds = patch.retry.baseDelaySeconds;
      }
      if (patch.retry?.maxDelaySeconds !== undefined) {
        changes.maxDelaySeconds = patch.retry.maxDelaySeconds;
      }
      if (patch.active !== undefined) changes.active = patch.active;
      if (patch.description !== undefined) changes.description = patch.description;

      const updated = await updateSubscriber(db, id, changes);
      if (!updated) throw subscriberNotFound(id);
      return c.json(subscriberView(updated), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/subscribers/{id}",
      tags,
      summary: "Delete a subscriber; its pending retries stop",
      security: adminSecurity,
      middleware: [admin] as const,
      request: { params: SubscriberParams },
      responses: { 204: { description: "Deleted" }, ...commonErrors },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      if (!(await deleteSubscriber(c.get("db"), id))) throw subscriberNotFound(id);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/subscribers/{id}/rotate-secret",
      tags,
      summary: "Issue a new signing secret; the old one keeps signing beside it for 24 hours",
      security: adminSecurity,
      middleware: [admin] as const,
      request: { params: SubscriberParams },
      responses: {
        200: { description: "The new secret", ...json(RotatedSecret) },
        ...commonErrors,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const now = Date.now();
      const secret = generateSecret();
      const rotation = { secret, previousExpiresAt: now + SECRET_OVERLAP_MS, now };
      if (!(await rotateSubscriberSecret(c.get("db"), id, rotation))) throw subscriberNotFound(id);
      return c.json({ secret }, 200);
    },
  );

function subscriberNotFound(id: string): ApiError {
  return new ApiError("not_found", `Subscriber ${id} does not exist`);
}
