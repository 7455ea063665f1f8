/**
 * The counters the cost Worker keeps while the broker runs inside it. Module state of one isolate:
 * the local runtime runs the API and every consumer in the same one, so one meter sees them all.
 */
import type {
  CallTally,
  ConsumedTally,
  CostSnapshot,
  D1Tally,
  SentTally,
  StatementTally,
} from "./snapshot";

/** The platform bills each 64 KB of a message written, read or deleted as one operation. */
export const QUEUE_UNIT_BYTES = 64 * 1024;

/** What D1 reports of a statement, as far as the counts go. */
export interface D1Meta {
  rows_read?: number;
  rows_written?: number;
  /** The statement's SQL time in ms. */
  duration?: number;
}

export interface Meter {
  roundTrip(kind: string): void;
  statement(kind: string, sql: string, meta: D1Meta | undefined): void;
  unmetered(kind: string): void;
  /** A round trip that ended after `ms`: its statements' SQL and what D1 reported of each. */
  call(
    kind: string,
    sqls: readonly string[],
    ms: number,
    metas: readonly (D1Meta | undefined)[],
  ): void;
  sent(queue: string, body: unknown): void;
  invocation(queue: string): void;
  consumed(queue: string, id: string, body: unknown): void;
  ended(queue: string, id: string, outcome: "ack" | "retry" | "implicit"): void;
  request(): void;
  scheduled(): void;
  retentionRun(): void;
  begin(): void;
  end(): void;
  snapshot(): CostSnapshot;
  /** Forgets everything counted; work still running keeps counting into the new totals. */
  reset(): void;
}

/** Bytes of a message body as the platform stores it; a body JSON cannot hold counts one unit. */
export function bodyBytes(body: unknown): number {
  try {
    return new TextEncoder().encode(JSON.stringify(body) ?? "").length;
  } catch {
    return 1;
  }
}

export function unitsOf(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / QUEUE_UNIT_BYTES));
}

interface QueueState {
  consumed: ConsumedTally;
  seen: Set<string>;
  acked: Set<string>;
}

/** A meter with everything at zero. */
export function createMeter(): Meter {
  let sequence = 0;
  let active = 0;
  let totals = empty();

  function empty() {
    return {
      requests: 0,
      scheduled: 0,
      retentionRuns: 0,
      d1: new Map<string, D1Tally>(),
      statements: new Map<string, StatementTally>(),
      calls: new Map<string, CallTally>(),
      sent: new Map<string, SentTally>(),
      queues: new Map<string, QueueState>(),
    };
  }
  const d1 = (kind: string): D1Tally => {
    sequence++;
    let tally = totals.d1.get(kind);
    if (!tally) {
      tally = {
        roundTrips: 0,
        statements: 0,
        rowsRead: 0,
        rowsWritten: 0,
        unmetered: 0,
        ms: 0,
        sqlMs: 0,
      };
      totals.d1.set(kind, tally);
    }
    return tally;
  };
  const queue = (name: string): QueueState => {
    sequence++;
    let state = totals.queues.get(name);
    if (!state) {
      state = {
        consumed: {
          invocations: 0,
          messages: 0,
          units: 0,
          distinct: 0,
          distinctUnits: 0,
          acked: 0,
          retried: 0,
          implicit: 0,
          ackedDistinct: 0,
        },
        seen: new Set(),
        acked: new Set(),
      };
      totals.queues.set(name, state);
    }
    return state;
  };

  return {
    roundTrip: (kind) => {
      d1(kind).roundTrips++;
    },
    statement(kind, sql, meta) {
      const tally = d1(kind);
      const read = meta?.rows_read ?? 0;
      const written = meta?.rows_written ?? 0;
      tally.statements++;
      tally.rowsRead += read;
      tally.rowsWritten += written;
      const key = `${kind}\n${sql}`;
      const entry = totals.statements.get(key) ?? {
        kind,
        sql,
        calls: 0,
        rowsRead: 0,
        rowsWritten: 0,
      };
      entry.calls++;
      entry.rowsRead += read;
      entry.rowsWritten += written;
      totals.statements.set(key, entry);
    },
    unmetered(kind) {
      const tally = d1(kind);
      tally.statements++;
      tally.unmetered++;
    },
    call(kind, sqls, ms, metas) {
      const tally = d1(kind);
      const sqlMs = metas.reduce((sum, meta) => sum + (meta?.duration ?? 0), 0);
      tally.ms += ms;
      tally.sqlMs += sqlMs;
      const key = `${kind}\n${sqls.join("\n;\n")}`;
      const entry = totals.calls.get(key) ?? {
        kind,
        sqls: [...sqls],
        calls: 0,
        statements: 0,
        rowsWritten: 0,
        ms: 0,
        sqlMs: 0,
      };
      entry.calls++;
      entry.statements += sqls.length;
      entry.rowsWritten += metas.reduce((sum, meta) => sum + (meta?.rows_written ?? 0), 0);
      entry.ms += ms;
      entry.sqlMs += sqlMs;
      totals.calls.set(key, entry);
    },
    sent(name, body) {
      sequence++;
      const bytes = bodyBytes(body);
      const tally = totals.sent.get(name) ?? { messages: 0, units: 0, bytes: 0 };
      tally.messages++;
      tally.units += unitsOf(bytes);
      tally.bytes += bytes;
      totals.sent.set(name, tally);
    },
    invocation(name) {
      queue(name).consumed.invocations++;
    },
    consumed(name, id, body) {
      const state = queue(name);
      const units = unitsOf(bodyBytes(body));
      state.consumed.messages++;
      state.consumed.units += units;
      if (state.seen.has(id)) return;
      state.seen.add(id);
      state.consumed.distinct++;
      state.consumed.distinctUnits += units;
    },
    ended(name, id, outcome) {
      const state = queue(name);
      if (outcome === "retry") {
        state.consumed.retried++;
        return;
      }
      if (outcome === "ack") state.consumed.acked++;
      else state.consumed.implicit++;
      if (state.acked.has(id)) return;
      state.acked.add(id);
      state.consumed.ackedDistinct++;
    },
    request: () => {
      sequence++;
      totals.requests++;
    },
    scheduled: () => {
      sequence++;
      totals.scheduled++;
    },
    retentionRun: () => {
      sequence++;
      totals.retentionRuns++;
    },
    begin: () => {
      sequence++;
      active++;
    },
    end: () => {
      sequence++;
      active--;
    },
    snapshot: () => ({
      sequence,
      active,
      requests: totals.requests,
      scheduled: totals.scheduled,
      retentionRuns: totals.retentionRuns,
      d1: Object.fromEntries(totals.d1),
      statements: [...totals.statements.values()],
      calls: [...totals.calls.values()],
      sent: Object.fromEntries(totals.sent),
      consumed: Object.fromEntries(
        [...totals.queues].map(([name, state]) => [name, state.consumed]),
      ),
    }),
    reset() {
      sequence++;
      totals = empty();
    },
  };
}
