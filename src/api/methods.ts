/**
 * Which methods a path answers, so that a known path called with the wrong method gets 405 with an
 * `Allow` header instead of a bare 404.
 */
interface RouteEntry {
  method: string;
  path: string;
}

interface Pattern {
  regex: RegExp;
  methods: Set<string>;
}

const cache = new WeakMap<readonly RouteEntry[], Pattern[]>();

/** The methods registered for `path` (empty when no route has that path). */
export function allowedMethods(routes: readonly RouteEntry[], path: string): string[] {
  const patterns = cache.get(routes) ?? compile(routes);
  cache.set(routes, patterns);
  const allowed = new Set<string>();
  for (const pattern of patterns) {
    if (pattern.regex.test(path)) for (const method of pattern.methods) allowed.add(method);
  }
  if (allowed.has("GET")) allowed.add("HEAD");
  return [...allowed].sort();
}

function compile(routes: readonly RouteEntry[]): Pattern[] {
  const byPath = new Map<string, Set<string>>();
  for (const { method, path } of routes) {
    if (method === "ALL" || path.includes("*")) continue;
    const methods = byPath.get(path) ?? new Set<string>();
    methods.add(method);
    byPath.set(path, methods);
  }
  // Exact, as Hono's router is: a path that differs by a trailing slash matches no route, so it
  // must not get a 405 that lists the very method it was called with.
  return [...byPath].map(([path, methods]) => ({
    regex: new RegExp(`^${path.split("/").map(segment).join("/")}$`),
    methods,
  }));
}

function segment(part: string): string {
  return part.startsWith(":") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
