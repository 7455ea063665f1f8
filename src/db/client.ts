import { type DrizzleD1Database, drizzle } from "drizzle-orm/d1";
import * as schema from "./schema";

/** The typed database handle every query function takes. */
export type Database = DrizzleD1Database<typeof schema>;

/** One handle per binding: drizzle walks the whole schema each time it makes one. */
const handles = new WeakMap<D1Database, Database>();

/** Wraps the D1 binding, once per binding object in the isolate. */
export function openDatabase(d1: D1Database): Database {
  let db = handles.get(d1);
  if (db === undefined) {
    db = drizzle(d1, { schema });
    handles.set(d1, db);
  }
  return db;
}
