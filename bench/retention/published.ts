/**
 * Cloudflare's published figure for what one D1 database does, quoted as the bench prints it. Found
 * with a documentation search for D1's limits and throughput; the FAQ's "Concurrency and
 * throughput" answer (the limits page carries the same FAQ). Re-check it when the page changes.
 */

export const D1_THROUGHPUT_SOURCE = {
  url: "https://developers.cloudflare.com/d1/reference/faq/",
  section: 'Limits › "How much work can a D1 database do?" › Concurrency and throughput',
  updated: "last updated Apr 21, 2026",
  quotes: [
    "Each individual D1 database is inherently single-threaded, and processes queries one at a time.",
    "If your average query takes 1 ms, you can run approximately 1,000 queries per second.",
    "Write queries like INSERT or UPDATE can take several milliseconds for SQL duration, and depend on the number of rows written.",
  ],
} as const;

/** The rule of thumb: 1 ms per query, about 1,000 queries a second. */
export const PUBLISHED_MS_PER_QUERY = 1;
/** What "several milliseconds" per write is taken as in the second reading of the figure. */
export const SEVERAL_MS_PER_WRITE = 3;
