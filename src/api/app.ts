/**
 * The HTTP API: one Hono app that sets up each request (id, configuration, database), mounts one
 * sub-app per resource under /v1, serves the OpenAPI document, and renders every failure as
 * problem+json.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import { readConfig } from "../config";
import { openDatabase } from "../db/client";
import { newId } from "../db/ids";
import { logError } from "../log";
import { VERSION } from "../version";
import { authenticate } from "./auth";
import type { AppContext, AppEnv } from "./context";
import { deadLettersApi } from "./dead-letters";
import { filtersApi } from "./filters";
import { messagesApi } from "./messages";
import { allowedMethods } from "./methods";
import { ApiError, problemResponse } from "./problem";
import { subscribersApi } from "./subscribers";
import { topicsApi } from "./topics";

const v1 = new OpenAPIHono<AppEnv>()
  .route("/", topicsApi)
  .route("/", subscribersApi)
  .route("/", messagesApi)
  .route("/", deadLettersApi)
  .route("/", filtersApi);

export const app = new OpenAPIHono<AppEnv>();

app.use(async (c, next) => {
  const requestId = newId("req");
  c.set("requestId", requestId);
  c.set("config", readConfig(c.env));
  await next();
  c.header("x-request-id", requestId);
});

app.get("/healthz", (c) => c.json({ ok: true }, 200));

// Env types every binding as present, but a deployment can lack one: fail closed, as for secrets.
app.use("/v1/*", async (c, next) => {
  if (!c.env.DB) throw new ApiError("not_configured", "The D1 binding DB is not configured");
  c.set("db", openDatabase(c.env.DB));
  await next();
});

app.route("/v1", v1);

app.doc31("/openapi.json", {
  openapi: "3.1.0",
  info: {
    title: "Switchboard",
    version: VERSION,
    description: "A pub/sub broker for HTTP services. Errors are RFC 9457 problem+json.",
  },
});

app.openAPIRegistry.registerComponent("securitySchemes", "adminToken", {
  type: "http",
  scheme: "bearer",
  description: "ADMIN_TOKEN: every route under /v1",
});
app.openAPIRegistry.registerComponent("securitySchemes", "publishToken", {
  type: "http",
  scheme: "bearer",
  description: "PUBLISH_TOKEN: the publish routes and message status",
});

app.notFound(async (c) => {
  const path = c.req.path;
  if (path === "/v1" || path.startsWith("/v1/")) await authenticate(c, undefined);
  const allow = allowedMethods(app.routes, path);
  if (allow.length > 0) {
    throw new ApiError("method_not_allowed", `${c.req.method} is not allowed on ${path}`, {
      headers: { allow: allow.join(", ") },
    });
  }
  throw new ApiError("not_found", `No route ${c.req.method} ${path}`);
});

app.onError((error, c) => renderError(error, c));

function renderError(error: Error, c: AppContext): Response {
  const requestId = c.get("requestId") ?? newId("req");
  const response = toProblem(error, requestId);
  response.headers.set("x-request-id", requestId);
  return response;
}

function toProblem(error: Error, requestId: string): Response {
  if (error instanceof ApiError) return error.toResponse(requestId);
  if (error instanceof HTTPException && error.status === 415) {
    return problemResponse(
      "unsupported_media_type",
      "Send the body as application/json",
      requestId,
    );
  }
  if (isStorageFailure(error)) {
    logError("api.storage_failed", { requestId, error: String(error.cause ?? error) });
    return problemResponse("unavailable", "Storage is unavailable; nothing was changed", requestId);
  }
  if (error instanceof HTTPException && error.status === 400) {
    return problemResponse(
      "invalid_json",
      error.message || "The request body is not valid JSON",
      requestId,
    );
  }
  logError("api.internal", { requestId, error: String(error), stack: error.stack });
  return problemResponse("internal", "An internal error occurred; quote the request id", requestId);
}

/** D1 failures surface as D1_* errors, possibly wrapped by drizzle. */
function isStorageFailure(error: Error): boolean {
  const cause = error.cause instanceof Error ? error.cause.message : "";
  return /\bD1_|D1 /.test(`${error.message} ${cause}`) || error.name === "DrizzleQueryError";
}
