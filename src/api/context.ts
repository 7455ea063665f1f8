import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { Config } from "../config";
import type { Database } from "../db/client";
import { validationError } from "./problem";
import { fieldErrors } from "./validation";

/** What every handler can read from its context. */
export interface AppEnv {
  Bindings: Env;
  Variables: { requestId: string; config: Config; db: Database };
}

export type AppContext = Context<AppEnv>;

/**
 * A sub-app for one resource. Its validation hook turns every zod failure (params, query, body)
 * into the contract's `validation_failed` problem, naming each field.
 */
export function createRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        throw validationError(fieldErrors(result.error));
      }
    },
  });
}
