/**
 * A D1 binding that counts what the database reports for every statement (rows read, rows
 * written) and every call to it, for one kind of invocation, while the broker uses it as it is.
 *
 * `first()` and `raw()` return no row counts, so they run as `all()`, which executes the same query
 * and reports them, and their answer is built from its rows; `raw()` takes each row's values in
 * column order, the conversion the query builder applies to batch results. A query whose result
 * has two columns of one name would lose one of them there, as it would in a batch, and
 * `raw({ columnNames: true })` of no rows has no names to give. The real `batch` accepts only the
 * binding's own statements, so those are passed to it unwrapped.
 */
import type { D1Meta, Meter } from "./meter";
import { passThrough } from "./pass-through";

// The binding's shape, as far as this file relies on it (bench/ is checked without the runtime's).
interface Result {
  results?: unknown[];
  meta?: D1Meta;
}
export interface Statement {
  bind(...values: unknown[]): Statement;
  run(): Promise<Result>;
  all(): Promise<Result>;
  first(column?: string): Promise<unknown>;
  raw(options?: { columnNames?: boolean }): Promise<unknown[]>;
}
export interface Database {
  prepare(sql: string): Statement;
  batch(statements: Statement[]): Promise<Result[]>;
  exec(sql: string): Promise<unknown>;
  withSession?(constraint?: string): Database;
}

interface Unwrapped {
  real: Statement;
  sql: string;
}

/** The metered binding for `kind`; statements prepared on it count there when they run. */
export function meterDatabase(db: Database, kind: string, meter: Meter): Database {
  const statements = new WeakMap<object, Unwrapped>();

  const measured = async (sql: string, run: () => Promise<Result>): Promise<Result> => {
    meter.roundTrip(kind);
    const started = performance.now();
    try {
      const result = await run();
      meter.statement(kind, sql, result.meta);
      meter.call(kind, [sql], performance.now() - started, [result.meta]);
      return result;
    } catch (error) {
      meter.statement(kind, sql, undefined);
      meter.call(kind, [sql], performance.now() - started, [undefined]);
      throw error;
    }
  };

  const wrapStatement = (real: Statement, sql: string): Statement => {
    const wrapped: Statement = passThrough(real, {
      bind: (...values: unknown[]) => wrapStatement(real.bind(...values), sql),
      run: () => measured(sql, () => real.run()),
      all: () => measured(sql, () => real.all()),
      async first(column?: string) {
        const row = (await measured(sql, () => real.all())).results?.[0];
        if (row === undefined || row === null) return null;
        if (column === undefined) return row;
        if (typeof row !== "object" || !(column in row)) {
          throw new Error(`D1_COLUMN_NOTFOUND: Column not found (${column})`);
        }
        return Reflect.get(row, column);
      },
      async raw(options?: { columnNames?: boolean }) {
        const rows = (await measured(sql, () => real.all())).results ?? [];
        const values = rows.map((row) => Object.values(row as Record<string, unknown>));
        if (!options?.columnNames) return values;
        return [Object.keys((rows[0] ?? {}) as Record<string, unknown>), ...values];
      },
    });
    statements.set(wrapped, { real, sql });
    return wrapped;
  };

  const wrapDatabase = (real: Database): Database =>
    passThrough(real, {
      prepare: (sql: string) => wrapStatement(real.prepare(sql), sql),
      async batch(list: Statement[]) {
        const unwrapped = list.map((statement) => statements.get(statement));
        const sqls = unwrapped.map((entry) => entry?.sql ?? "(statement from elsewhere)");
        meter.roundTrip(kind);
        const started = performance.now();
        let results: Result[];
        try {
          results = await real.batch(list.map((statement, i) => unwrapped[i]?.real ?? statement));
        } catch (error) {
          meter.call(kind, sqls, performance.now() - started, []);
          throw error;
        }
        const ms = performance.now() - started;
        results.forEach((result, i) => {
          meter.statement(kind, sqls[i] ?? "(statement from elsewhere)", result.meta);
        });
        meter.call(
          kind,
          sqls,
          ms,
          results.map((result) => result.meta),
        );
        return results;
      },
      exec(sql: string) {
        meter.roundTrip(kind);
        meter.unmetered(kind);
        return real.exec(sql);
      },
      ...sessions(real),
    });

  // Offered only where the binding has it, so that the broker sees the same binding shape.
  const sessions = (real: Database): Partial<Database> => {
    const open = real.withSession?.bind(real);
    return open ? { withSession: (constraint?: string) => wrapDatabase(open(constraint)) } : {};
  };

  return wrapDatabase(db);
}
