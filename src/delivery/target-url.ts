export type QueryParams = Record<string, string | string[]>;

export type TargetUrlResult =
  | { ok: true; url: string }
  | { ok: false; missing: string[]; reason: string };

const NAME = "[A-Za-z_][A-Za-z0-9_]*";
const COLON_SEGMENT = new RegExp(`^:(${NAME})$`);
// The WHATWG parser percent-encodes braces in a path, so a parsed template has `%7B…%7D`.
const BRACED = new RegExp(`(?:\\{|%7B)(${NAME})(?:\\}|%7D)`, "gi");
/** BRACED without the global flag, whose `lastIndex` would carry from one test to the next. */
const HAS_BRACED = new RegExp(BRACED.source, "i");
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

/**
 * The URL of one delivery. Fills `:name` path segments and `{name}` anywhere in the path from
 * `pathParams` (each value through `encodeURIComponent`, so `/` and `?` stay inside their
 * segment), then merges the query: the URL's own query, then `subscriberQuery`, then
 * `messageQuery`. A later source replaces every value of a name an earlier one set; an array
 * becomes repeated parameters, and an empty array removes the name. Added parameters are
 * percent-encoded (a space is `%20`); the URL's own parameters are kept as written.
 *
 * `:name` must be a whole segment (`/orders/:orderId/items`), so the port in `https://h:8443/`
 * is not a parameter; names are `[A-Za-z_][A-Za-z0-9_]*`. Braces already percent-encoded
 * (`%7Bname%7D`, as in a `URL`'s `href`) count as braces. The host and query are never filled.
 *
 * Fails with every missing name in `missing`, or when a value would make a `.` or `..` segment,
 * which `fetch` would resolve into another path; `reason` says which, for the delivery's error.
 * Throws if `template` is not an absolute URL: subscriber URLs are checked when they are saved.
 *
 * @example
 * buildTargetUrl("https://h/orders/:id", { id: "a/b" }, {}, { tag: ["x", "y"] });
 * // { ok: true, url: "https://h/orders/a%2Fb?tag=x&tag=y" }
 */
export function buildTargetUrl(
  template: string,
  pathParams: Record<string, string>,
  subscriberQuery: QueryParams,
  messageQuery: QueryParams,
): TargetUrlResult {
  // Most subscribers have a fixed URL and most messages no query: then the URL is the template's.
  const fixed = fixedHref(template);
  if (fixed !== undefined && isEmpty(subscriberQuery) && isEmpty(messageQuery)) {
    return { ok: true, url: fixed };
  }
  const url = new URL(template);
  const missing = new Set<string>();
  const value = (name: string): string => {
    if (Object.hasOwn(pathParams, name)) return encode(pathParams[name] ?? "");
    missing.add(name);
    return "";
  };
  const dotSegments: string[] = [];
  const segments = url.pathname.split("/").map((segment) => {
    const colon = COLON_SEGMENT.exec(segment);
    const filled =
      colon?.[1] !== undefined
        ? value(colon[1])
        : segment.replace(BRACED, (_, name: string) => value(name));
    if (filled !== segment && DOT_SEGMENT.test(filled)) dotSegments.push(segment);
    return filled;
  });
  if (missing.size > 0) {
    const names = [...missing];
    const noun = names.length === 1 ? "parameter" : "parameters";
    return {
      ok: false,
      missing: names,
      reason: `URL needs path ${noun} ${names.join(", ")}, which the message does not have`,
    };
  }
  if (dotSegments.length > 0) {
    return {
      ok: false,
      missing: [],
      reason: `Path parameters fill ${dotSegments.join(", ")} with "." or "..", which would send the request to a different path`,
    };
  }
  url.pathname = segments.join("/");
  const overrides = new Map<string, string[]>();
  for (const query of [subscriberQuery, messageQuery]) {
    for (const [name, values] of Object.entries(query)) {
      overrides.set(name, typeof values === "string" ? [values] : values);
    }
  }
  if (overrides.size > 0) url.search = mergeQuery(url.search, overrides);
  return { ok: true, url: url.href };
}

const FIXED_CACHE_LIMIT = 1_000;
/** Template → its normalized href when it has no path parameters, else null. */
const fixedCache = new Map<string, string | null>();

/** The href of a template without path parameters, parsed once per template; else undefined. */
function fixedHref(template: string): string | undefined {
  let href = fixedCache.get(template);
  if (href === undefined) {
    const url = new URL(template);
    const templated = url.pathname
      .split("/")
      .some((segment) => COLON_SEGMENT.test(segment) || HAS_BRACED.test(segment));
    href = templated ? null : url.href;
    if (fixedCache.size >= FIXED_CACHE_LIMIT) {
      const oldest = fixedCache.keys().next().value;
      if (oldest !== undefined) fixedCache.delete(oldest);
    }
    fixedCache.set(template, href);
  }
  return href ?? undefined;
}

function isEmpty(query: QueryParams): boolean {
  for (const _ in query) return false;
  return true;
}

function mergeQuery(search: string, overrides: Map<string, string[]>): string {
  const kept = search
    .slice(1)
    .split("&")
    .filter((pair) => pair !== "" && !overrides.has(formDecodedName(pair)));
  const added = [...overrides].flatMap(([name, values]) =>
    values.map((v) => `${encode(name)}=${encode(v)}`),
  );
  return [...kept, ...added].join("&");
}

function formDecodedName(pair: string): string {
  return new URLSearchParams(pair).keys().next().value ?? "";
}

// Lone surrogates can arrive in JSON strings; encodeURIComponent would throw on them.
function encode(text: string): string {
  return encodeURIComponent(text.toWellFormed());
}
