/**
 * Bearer-token access control as the contract states it: a secret that is not configured never
 * opens the door (503 before the token is looked at), a missing or wrong token is 401, and the
 * publish token on a route that needs the admin token is 403.
 */
import type { MiddlewareHandler } from "hono";
import type { Config } from "../config";
import { tokensEqual } from "../security/tokens";
import type { AppContext, AppEnv } from "./context";
import { ApiError } from "./problem";

/** Who may call a route: `admin` needs ADMIN_TOKEN; `publisher` takes either token. */
export type Access = "admin" | "publisher";

/** Route middleware that admits only callers with the given access. */
export function requireAccess(access: Access): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await authenticate(c, access);
    await next();
  };
}

/**
 * Checks the caller against `access` and throws the contract's problem if it is refused. With
 * `access` undefined (an unknown route), any valid token is enough.
 */
export async function authenticate(c: AppContext, access: Access | undefined): Promise<void> {
  const { adminToken, publishToken } = c.get("config");
  assertConfigured(access, adminToken, publishToken);

  const token = bearerToken(c.req.header("authorization"));
  if (token === undefined) {
    throw new ApiError("unauthorized", "Send a bearer token in the Authorization header", {
      headers: { "www-authenticate": 'Bearer realm="switchboard"' },
    });
  }
  const role = await roleOf(token, c.get("config"));
  if (role === undefined) {
    throw new ApiError("unauthorized", "The bearer token is not valid", {
      headers: { "www-authenticate": 'Bearer realm="switchboard", error="invalid_token"' },
    });
  }
  if (access === "admin" && role !== "admin") {
    throw new ApiError(
      "forbidden",
      "The publish token cannot call this route; use the admin token",
    );
  }
}

function assertConfigured(
  access: Access | undefined,
  adminToken: string | undefined,
  publishToken: string | undefined,
): void {
  if (access === "admin" && !adminToken) {
    throw new ApiError("not_configured", "ADMIN_TOKEN is not configured on this broker");
  }
  if (!adminToken && !publishToken) {
    throw new ApiError(
      "not_configured",
      "Neither ADMIN_TOKEN nor PUBLISH_TOKEN is configured on this broker",
    );
  }
}

/** Compares against both secrets every time, so timing does not tell which one exists. */
async function roleOf(token: string, config: Config): Promise<Access | undefined> {
  const [isAdmin, isPublisher] = await Promise.all([
    config.adminToken ? tokensEqual(token, config.adminToken) : false,
    config.publishToken ? tokensEqual(token, config.publishToken) : false,
  ]);
  if (isAdmin) return "admin";
  if (isPublisher) return "publisher";
  return undefined;
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^\s*Bearer\s+(\S+)\s*$/i);
  return match?.[1];
}
