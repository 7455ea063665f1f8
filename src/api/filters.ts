/** POST /v1/filters/test: try a filter against a message without publishing anything. */
import { createRoute, z } from "@hono/zod-openapi";
import { newId } from "../db/ids";
import { filterBody } from "../publish/body";
import { messageBodyOf, requestPartsOf } from "../publish/envelope";
import { requireAccess } from "./auth";
import { createRouter } from "./context";
import { jsonBody } from "./json-body";
import { adminSecurity, commonErrors } from "./responses";
import { TopicName } from "./schemas/common";
import { Envelope } from "./schemas/envelope";
import { compileFilterOrThrow } from "./subscriber-rules";

export const FilterTest = z
  .strictObject({
    filter: z.string().openapi({ example: 'body.category == "food"' }),
    message: Envelope,
    topic: TopicName.optional().openapi({
      description: "The `topic` the filter sees (default `test`)",
    }),
  })
  .openapi("FilterTest");

export const FilterTestResult = z.object({ matches: z.boolean() }).openapi("FilterTestResult");

export const filtersApi = createRouter().openapi(
  createRoute({
    method: "post",
    path: "/filters/test",
    tags: ["Filters"],
    summary: "Evaluate a filter against a message",
    security: adminSecurity,
    middleware: [requireAccess("admin"), jsonBody()] as const,
    request: { body: { content: { "application/json": { schema: FilterTest } }, required: true } },
    responses: {
      200: {
        description: "Whether the message matches",
        content: { "application/json": { schema: FilterTestResult } },
      },
      ...commonErrors,
    },
  }),
  async (c) => {
    const { filter, message, topic } = c.req.valid("json");
    const matches = compileFilterOrThrow(filter).matches({
      id: newId("msg"),
      topic: topic ?? "test",
      body: filterBody(messageBodyOf(message)),
      ...requestPartsOf(message),
      publishedAt: new Date().toISOString(),
    });
    return c.json({ matches }, 200);
  },
);
