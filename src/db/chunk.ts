/** Splits `items` into runs of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

/**
 * Splits `items`, in order, into runs whose sizes add up to at most `maxSize` and that hold at
 * most `maxCount` items. An item larger than `maxSize` gets a run of its own.
 */
export function packBySize<T>(
  items: readonly T[],
  sizeOf: (item: T) => number,
  maxSize: number,
  maxCount = Number.POSITIVE_INFINITY,
): T[][] {
  const runs: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const item of items) {
    const itemSize = sizeOf(item);
    if (current.length > 0 && (current.length === maxCount || size + itemSize > maxSize)) {
      runs.push(current);
      current = [];
      size = 0;
    }
    current.push(item);
    size += itemSize;
  }
  if (current.length > 0) runs.push(current);
  return runs;
}
