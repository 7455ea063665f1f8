/** /v1/dead-letters: inspect, replay and delete deliveries that ran out of attempts. */
import { createRoute } from "@hono/zod-openapi";
import { deleteDeadLetter, findReplayCandidates, listDeadLetters } from "../db/dead-letters";
import { checkReplayable, replayCandidates, replayMatching } from "../deadletters/replay";
import { requireAccess } from "./auth";
import { createRouter } from "./context";
import { jsonBody } from "./json-body";
import { decodeCursor, page } from "./pagination";
import { ApiError } from "./problem";
import { adminSecurity, commonErrors, conflictError, json } from "./responses";
import {
  DeadLetterList,
  DeadLetterParams,
  DeadLetterQuery,
  Replayed,
  ReplayFilter,
} from "./schemas/dead-letters";

const admin = requireAccess("admin");
const tags = ["Dead letters"];

export const deadLettersApi = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/dead-letters",
      tags,
      summary: "List dead letters, oldest first, optionally for one topic or subscriber",
      security: adminSecurity,
      middleware: [admin] as const,
      request: { query: DeadLetterQuery },
      responses: {
        200: { description: "A page of dead letters", ...json(DeadLetterList) },
        ...commonErrors,
      },
    }),
    async (c) => {
      const { limit, cursor, topic, subscriberId } = c.req.valid("query");
      const rows = await listDeadLetters(
        c.get("db"),
        { topic, subscriberId },
        { after: decodeCursor(cursor), limit: limit + 1 },
      );
      const { items, nextCursor } = page(rows, limit, (row) => row.id);
      return c.json(
        {
          deadLetters: items.map((row) => ({
            id: row.id,
            messageId: row.messageId,
            topic: row.topic,
            subscriberId: row.subscriberId,
            attempts: row.attempts,
            lastStatus: row.lastStatus,
            lastError: row.lastError,
            deadAt: new Date(row.deadAt).toISOString(),
          })),
          nextCursor,
        },
        200,
      );
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/dead-letters/replay",
      tags,
      summary: "Replay every dead letter, or those of a topic or subscriber",
      description: `Replays at most 5,000 per call; call again while \`replayed\` is 5,000. Dead letters whose subscriber is gone or inactive stay.`,
      security: adminSecurity,
      middleware: [admin, jsonBody({ optional: true })] as const,
      request: { body: { ...json(ReplayFilter), required: false } },
      responses: { 202: { description: "Queued again", ...json(Replayed) }, ...commonErrors },
    }),
    async (c) => {
      const filter = c.req.valid("json");
      const replayed = await replayMatching(c.get("db"), c.env.DELIVERY_QUEUE, filter, Date.now());
      return c.json({ replayed }, 202);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/dead-letters/{id}/replay",
      tags,
      summary: "Replay one dead letter to the subscriber as it is now",
      security: adminSecurity,
      middleware: [admin] as const,
      request: { params: DeadLetterParams },
      responses: {
        202: { description: "Queued again", ...json(Replayed) },
        ...commonErrors,
        ...conflictError,
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const db = c.get("db");
      const [candidate] = await findReplayCandidates(db, { id }, { after: undefined, limit: 1 });
      if (!candidate) throw new ApiError("not_found", `Dead letter ${id} does not exist`);
      const checked = checkReplayable(candidate);
      if (!checked.ok) {
        throw new ApiError("conflict", `${checked.reason}; dead letter ${id} cannot be replayed`);
      }
      const replayed = await replayCandidates(
        db,
        c.env.DELIVERY_QUEUE,
        [checked.replayable],
        Date.now(),
      );
      if (replayed === 0) {
        throw new ApiError("unavailable", "The queue is unavailable; the dead letter was kept");
      }
      return c.json({ replayed }, 202);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/dead-letters/{id}",
      tags,
      summary: "Delete a dead letter",
      security: adminSecurity,
      middleware: [admin] as const,
      request: { params: DeadLetterParams },
      responses: { 204: { description: "Deleted" }, ...commonErrors },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      if (!(await deleteDeadLetter(c.get("db"), id))) {
        throw new ApiError("not_found", `Dead letter ${id} does not exist`);
      }
      return c.body(null, 204);
    },
  );
