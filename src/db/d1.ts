/**
 * Plain D1 statements for the hot paths: publishing, fan-out and delivery. There, drizzle's query
 * building cost more CPU than the statements themselves (BENCHMARKS.md, "End-to-end throughput"),
 * so these paths use fixed SQL text and the management API keeps the builder. A list is bound as
 * one JSON parameter and read back with `json_each`: a statement's parameter count does not grow
 * with its batch, so D1's 100 parameters never split one, and one statement serves any batch size.
 *
 * A bound value may hold at most 2 MB in production (local D1 does not check): lists that can grow
 * with a fan-out are split with {@link jsonChunks}.
 */

/** The rows of a statement's result, typed as the statement's column aliases say. */
export function rowsOf<T>(result: D1Result<unknown> | undefined): T[] {
  return (result?.results ?? []) as T[];
}

/** A safe bound for one JSON parameter, well under D1's 2 MB per value. */
export const JSON_PARAMETER_MAX_CHARS = 1_000_000;

/**
 * Splits `items` into runs whose JSON stays within `maxChars`, each run at least one item long.
 * `charsOf` is an item's length in the JSON, separators aside.
 */
export function jsonChunks<T>(
  items: readonly T[],
  charsOf: (item: T) => number,
  maxChars = JSON_PARAMETER_MAX_CHARS,
): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let size = 2;
  for (const item of items) {
    const chars = charsOf(item) + 1;
    if (current.length > 0 && size + chars > maxChars) {
      chunks.push(current);
      current = [];
      size = 2;
    }
    current.push(item);
    size += chars;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
