/**
 * The Worker's database behind a proxy that sums the rows D1 says each statement wrote, for the
 * tests that pin what an operation costs in rows.
 */
import { env } from "cloudflare:workers";

/** The Worker's database behind a proxy that sums the rows D1 says each statement wrote. */
export function meteredD1() {
  let written = 0;
  const count = (results: readonly D1Result<unknown>[]) => {
    for (const result of results) written += result.meta.rows_written ?? 0;
  };
  const real = new WeakMap<object, D1PreparedStatement>();
  const wrap = (statement: D1PreparedStatement): D1PreparedStatement => {
    const proxy = new Proxy(statement, {
      get(target, property) {
        if (property === "bind") return (...values: unknown[]) => wrap(target.bind(...values));
        if (property === "run" || property === "all") {
          return async () => {
            const result = await target[property]();
            count([result]);
            return result;
          };
        }
        // `raw` reports no meta: run the statement with `all` and hand back its rows as arrays
        // (the statements measured here have no two columns of one name).
        if (property === "raw") {
          return async (options?: { columnNames?: boolean }) => {
            const result = await target.all<Record<string, unknown>>();
            count([result]);
            const rows = result.results.map((row) => Object.values(row));
            const [first] = result.results;
            return options?.columnNames ? [Object.keys(first ?? {}), ...rows] : rows;
          };
        }
        const value: unknown = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    real.set(proxy, statement);
    return proxy;
  };
  const db = new Proxy(env.DB, {
    get(target, property) {
      if (property === "prepare") return (sql: string) => wrap(target.prepare(sql));
      if (property === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          const results = await target.batch(statements.map((s) => real.get(s) ?? s));
          count(results);
          return results;
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return {
    db,
    /** Rows written since the last call. */
    take(): number {
      const taken = written;
      written = 0;
      return taken;
    },
  };
}
