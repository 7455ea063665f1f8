/**
 * The Worker's configuration, read from `env` once per isolate and validated with zod. Anything
 * missing or malformed fails closed: an absent token opens nothing, and a private-URL switch that
 * is not exactly "true" stays off.
 */
import { z } from "zod";

const Secret = z
  .string()
  .optional()
  .transform((value) => (value?.trim() ? value : undefined));

/**
 * Topics of up to this many subscribers are fanned out at publish: where the fan-out task costs
 * most per delivery, while the check stays a read of a few rows.
 */
const DEFAULT_INLINE_FANOUT_MAX_SUBSCRIBERS = 10;

const EnvSchema = z.object({
  ADMIN_TOKEN: Secret,
  PUBLISH_TOKEN: Secret,
  ALLOW_PRIVATE_URLS: z
    .string()
    .optional()
    .transform((value) => value === "true"),
  RETENTION_DAYS: days(7),
  DEAD_LETTER_RETENTION_DAYS: days(14),
  INLINE_FANOUT_MAX_SUBSCRIBERS: z
    .string()
    .optional()
    .transform((value) =>
      value !== undefined && /^\d{1,3}$/.test(value) && Number(value) <= 100
        ? Number(value)
        : DEFAULT_INLINE_FANOUT_MAX_SUBSCRIBERS,
    ),
});

/** A whole number of days, 1–3650; anything else falls back to the default. */
function days(fallback: number) {
  return z
    .string()
    .optional()
    .transform((value) => {
      const parsed = Number(value);
      return Number.isInteger(parsed) && parsed >= 1 && parsed <= 3650 ? parsed : fallback;
    });
}

export interface Config {
  /** Opens everything under /v1; undefined when not configured. */
  adminToken: string | undefined;
  /** Opens the publish endpoints and message status; undefined when not configured. */
  publishToken: string | undefined;
  /** Lets subscriber URLs point at http, loopback and private hosts (local development). */
  allowPrivateUrls: boolean;
  /** Days that messages, deliveries and idempotency keys are kept (default 7). */
  retentionDays: number;
  /** Days that dead letters are kept (default 14). */
  deadLetterRetentionDays: number;
  /**
   * The most active subscribers a topic may have for a publish to fan its messages out itself,
   * skipping the fan-out queue, when none has a filter (0–100, default 10; 0 turns it off).
   */
  inlineFanoutMaxSubscribers: number;
}

const cache = new WeakMap<object, Config>();

/** The validated configuration of this `env`. */
export function readConfig(env: Env): Config {
  const cached = cache.get(env);
  if (cached) return cached;
  const parsed = EnvSchema.parse({
    ADMIN_TOKEN: stringOrUndefined(env.ADMIN_TOKEN),
    PUBLISH_TOKEN: stringOrUndefined(env.PUBLISH_TOKEN),
    ALLOW_PRIVATE_URLS: stringOrUndefined(env.ALLOW_PRIVATE_URLS),
    RETENTION_DAYS: stringOrUndefined(env.RETENTION_DAYS),
    DEAD_LETTER_RETENTION_DAYS: stringOrUndefined(env.DEAD_LETTER_RETENTION_DAYS),
    INLINE_FANOUT_MAX_SUBSCRIBERS: stringOrUndefined(env.INLINE_FANOUT_MAX_SUBSCRIBERS),
  });
  const config: Config = {
    adminToken: parsed.ADMIN_TOKEN,
    publishToken: parsed.PUBLISH_TOKEN,
    allowPrivateUrls: parsed.ALLOW_PRIVATE_URLS,
    retentionDays: parsed.RETENTION_DAYS,
    deadLetterRetentionDays: parsed.DEAD_LETTER_RETENTION_DAYS,
    inlineFanoutMaxSubscribers: parsed.INLINE_FANOUT_MAX_SUBSCRIBERS,
  };
  cache.set(env, config);
  return config;
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}
