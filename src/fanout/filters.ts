/**
 * Compiled subscriber filters, cached in the isolate by (subscriber id, version): a filter is
 * compiled once per subscriber version, however many messages it sees.
 */
import { type CompiledFilter, compileFilter } from "../filter";
import { logError } from "../log";

const MAX_ENTRIES = 10_000;
const cache = new Map<string, CompiledFilter | null>();

/**
 * The subscriber's compiled filter; null for "every message". A stored filter that no longer
 * compiles matches nothing (and is logged), rather than everything.
 */
export function filterFor(subscriber: {
  id: string;
  version: number;
  filter: string | null;
}): CompiledFilter | null | "invalid" {
  if (!subscriber.filter) return null;
  const key = `${subscriber.id}@${subscriber.version}`;
  const cached = cache.get(key);
  if (cached !== undefined) return cached ?? "invalid";
  const compiled = compileFilter(subscriber.filter);
  const entry = compiled.ok ? compiled.filter : null;
  if (!compiled.ok)
    logError("fanout.filter_invalid", { subscriberId: subscriber.id, problem: compiled.problem });
  if (cache.size >= MAX_ENTRIES) {
    const oldest = cache.keys().next().value;
    if (oldest !== undefined) cache.delete(oldest);
  }
  cache.set(key, entry);
  return entry ?? "invalid";
}
