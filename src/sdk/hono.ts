/**
 * Hono middleware for subscribers that are themselves Workers (or any Hono app): verifies the
 * broker's signature before the handler runs. Import from `switchboard/sdk/hono`.
 */
import type { Context, Env, MiddlewareHandler } from "hono";
import { verifyWebhook, WebhookVerificationError } from "./webhook";

/** The app's environment with the variable the middleware sets. */
export type SwitchboardWebhookEnv<E extends Env = Env> = E & {
  Variables: SwitchboardWebhookVariables;
};

/** The secret, or a function of the request's context that finds it (e.g. in `c.env`). */
export type WebhookSecret<E extends Env = Env> =
  | string
  | readonly string[]
  | ((
      c: Context<SwitchboardWebhookEnv<E>>,
    ) => string | readonly string[] | Promise<string | readonly string[]>);

/** Options of {@link switchboardWebhook}. */
export interface SwitchboardWebhookOptions<E extends Env = Env> {
  /** One secret, or the new and the old during a rotation. */
  secret: WebhookSecret<E>;
  /** How far `webhook-timestamp` may be from the local clock, either way. Default 300. */
  toleranceSeconds?: number | undefined;
}

/** What the middleware puts on the context: `c.get("webhookPayload")`. */
export interface SwitchboardWebhookVariables {
  /** The verified body: parsed JSON when it parses, else the text. */
  webhookPayload: unknown;
}

/**
 * Verifies each request with `verifyWebhook` and answers `401` (JSON `{ error, reason }`) when
 * it does not verify; otherwise puts the payload on the context as `webhookPayload`. The body
 * stays readable: `c.req.json()` and friends still work after it.
 *
 * @example
 * type AppEnv = { Bindings: { SWITCHBOARD_SECRET: string } };
 * const app = new Hono<AppEnv>();
 * app.post(
 *   "/hooks/orders",
 *   switchboardWebhook<AppEnv>({ secret: (c) => c.env.SWITCHBOARD_SECRET }),
 *   (c) => {
 *     const order = c.get("webhookPayload");
 *     return c.body(null, 204);
 *   },
 * );
 */
export function switchboardWebhook<E extends Env = Env>(
  options: SwitchboardWebhookOptions<E>,
): MiddlewareHandler<SwitchboardWebhookEnv<E>> {
  return async (c, next) => {
    const secret = typeof options.secret === "function" ? await options.secret(c) : options.secret;
    try {
      const payload = await verifyWebhook({
        secret,
        headers: c.req.raw.headers,
        body: new Uint8Array(await c.req.arrayBuffer()),
        toleranceSeconds: options.toleranceSeconds,
      });
      c.set("webhookPayload", payload);
    } catch (error) {
      if (!(error instanceof WebhookVerificationError)) throw error;
      return new Response(
        JSON.stringify({ error: "invalid_webhook", reason: error.reason, detail: error.message }),
        { status: 401, headers: { "content-type": "application/json" } },
      );
    }
    await next();
  };
}
