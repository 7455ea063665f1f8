import { type DrizzleD1Database, drizzle } from "drizzle-orm/d1";
import * as schema from "./schema";

/** The typed database handle every query function takes. */
export type Database = DrizzleD1Database<typeof schema>;

/** Wraps the D1 binding; cheap enough to call per request. */
export function openDatabase(d1: D1Database): Database {
  return drizzle(d1, { schema });
}
