/**
 * The counters the cost Worker serves at `GET /__cost`, as JSON: the one shape the Worker
 * (bench/cost/meter.ts) fills and the bench reads. Everything is keyed by what started the work (a
 * publish request, a queue's consumer, retention), so that each stage's share of a delivery's cost
 * can be told apart.
 */

/** D1 work done by one kind of invocation. */
export interface D1Tally {
  /** Calls that went to the database: one per `batch`, `run`, `all`, `first` or `raw`. */
  roundTrips: number;
  statements: number;
  rowsRead: number;
  rowsWritten: number;
  /** Statements that report no row counts (`exec`): their rows are missing from the sums. */
  unmetered: number;
  /** Wall time of the round trips as the Worker saw them, from the call to the answer, in ms. */
  ms: number;
  /** The statements' own SQL time as D1 reports it (`meta.duration`), in ms. */
  sqlMs: number;
}

/**
 * One shape of D1 call made by one kind of invocation: a `batch` of these statements, or a single
 * statement's `run`, `all`, `first` or `raw`, with how long its round trips took.
 */
export interface CallTally {
  kind: string;
  /** The SQL of the call's statements, in order. */
  sqls: string[];
  calls: number;
  statements: number;
  rowsWritten: number;
  /** Wall time of these calls as the Worker saw them, in ms. */
  ms: number;
  /** Their statements' SQL time as D1 reports it (`meta.duration`), in ms. */
  sqlMs: number;
}

/** One SQL text run by one kind of invocation. */
export interface StatementTally {
  kind: string;
  sql: string;
  calls: number;
  rowsRead: number;
  rowsWritten: number;
}

/** Messages a queue producer wrote. */
export interface SentTally {
  messages: number;
  /** Billed 64 KB units: a message of up to 64 KB is one. */
  units: number;
  bytes: number;
}

/** What a queue's consumer was handed and how each message ended. */
export interface ConsumedTally {
  invocations: number;
  /** Messages handed over, each retry again. */
  messages: number;
  /** Billed 64 KB units read, each retry again. */
  units: number;
  /** Distinct messages, and their units: each was written once and is deleted once. */
  distinct: number;
  distinctUnits: number;
  acked: number;
  retried: number;
  /** Messages the handler neither acked nor retried: the platform acks them when it returns. */
  implicit: number;
  /** Distinct messages that ended acked, explicitly or not. */
  ackedDistinct: number;
}

export interface CostSnapshot {
  /** Grows with every event counted: unchanged between two reads means nothing happened. */
  sequence: number;
  /** Broker invocations (and work they left to `waitUntil`) still running. */
  active: number;
  /** Requests the broker served. */
  requests: number;
  /** Cron runs and retention runs started through `/__cost/retention`. */
  scheduled: number;
  retentionRuns: number;
  d1: Record<string, D1Tally>;
  statements: StatementTally[];
  calls: CallTally[];
  /** By queue name. */
  sent: Record<string, SentTally>;
  consumed: Record<string, ConsumedTally>;
}
