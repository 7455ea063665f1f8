/**
 * Rules for the headers a message or a subscriber adds to a delivery.
 *
 * Names are RFC 9110 tokens, compared case-insensitively and delivered lower-case. Values are
 * RFC 9110 field values limited to US-ASCII: visible characters, spaces and tabs, not starting or
 * ending with whitespace. Non-ASCII (obs-text) is refused rather than passed on: `fetch` in
 * Workers sends it as UTF-8 and logs a warning on every request, browsers and Node refuse most of
 * it, and RFC 9110 §5.5 asks for ASCII, so percent- or base64-encoding is the portable way.
 * Refused names are the framing and hop-by-hop headers, which belong to each connection, and the
 * broker's own `webhook-*` and `switchboard-*`.
 *
 * `content-type` and `user-agent` are accepted (filters can match on them), but the contract
 * applies the broker's headers last: a delivery carries the body's own content type (none when
 * it sends no body) and the broker's user agent. To deliver another content type, declare it
 * with the body: `bodyText` or `bodyBase64` with `contentType`, or the raw endpoint's
 * `Content-Type`.
 */

export const MAX_HEADER_NAME_LENGTH = 256;
export const MAX_HEADER_VALUE_LENGTH = 8192;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const CONNECTION_HEADERS = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
]);

const BROKER_PREFIXES = ["webhook-", "switchboard-"];

/**
 * Why this header name cannot be used, or undefined if it can.
 *
 * @example
 * headerNameProblem("X-Api-Key"); // undefined
 * headerNameProblem("Webhook-Id"); // 'Header name "Webhook-Id" is reserved: webhook-* headers are set by the broker'
 */
export function headerNameProblem(name: string): string | undefined {
  if (name === "") return "Header name must not be empty";
  if (name.length > MAX_HEADER_NAME_LENGTH) {
    return `Header name is ${name.length} characters long; at most ${MAX_HEADER_NAME_LENGTH} are allowed`;
  }
  if (!TOKEN.test(name)) {
    const bad = [...name].find((char) => !TOKEN.test(char)) ?? "";
    return `Header name "${name}" contains ${describeChar(bad)}; a header name may only contain letters, digits and !#$%&'*+-.^_\`|~`;
  }
  const lower = name.toLowerCase();
  if (CONNECTION_HEADERS.has(lower) || lower.startsWith("proxy-")) {
    return `Header name "${name}" is reserved: it describes the connection, which the broker manages`;
  }
  const prefix = BROKER_PREFIXES.find((p) => lower.startsWith(p));
  if (prefix !== undefined) {
    return `Header name "${name}" is reserved: ${prefix}* headers are set by the broker`;
  }
  return undefined;
}

/**
 * Why this header value cannot be used, or undefined if it can. The value is not quoted in the
 * reason, since it may be a credential.
 *
 * @example
 * headerValueProblem("a\r\nb"); // "Header value contains a carriage return (U+000D); header values cannot contain CR, LF or NUL"
 */
export function headerValueProblem(value: string): string | undefined {
  if (value.length > MAX_HEADER_VALUE_LENGTH) {
    return `Header value is ${value.length} characters long; at most ${MAX_HEADER_VALUE_LENGTH} are allowed`;
  }
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    if (code === 0x0d || code === 0x0a || code === 0x00) {
      return `Header value contains ${describeChar(char)}; header values cannot contain CR, LF or NUL`;
    }
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) {
      return `Header value contains ${describeChar(char)}; header values cannot contain control characters`;
    }
    if (code > 0x7f) {
      return `Header value contains ${describeChar(char)}; header values can only carry ASCII text (percent-encode or base64-encode other characters)`;
    }
  }
  if (/^[ \t]|[ \t]$/.test(value)) {
    return "Header value must not start or end with a space or tab";
  }
  return undefined;
}

/**
 * Lower-cases names; assumes they were validated. Later duplicates (case-insensitively) win.
 * Normalise each source before merging, so that the later source wins whatever the case:
 * `{ ...normalizeHeaders(messageHeaders), ...normalizeHeaders(subscriberHeaders) }`.
 *
 * @example
 * normalizeHeaders({ "X-Mode": "a", "x-mode": "b" }); // { "x-mode": "b" }
 */
export function normalizeHeaders(headers: Record<string, string>): Record<string, string> {
  const merged = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) merged.set(name.toLowerCase(), value);
  // fromEntries defines own properties, so a header named `__proto__` survives.
  return Object.fromEntries(merged);
}

const CHAR_NAMES: Record<string, string> = {
  "\r": "a carriage return",
  "\n": "a line feed",
  "\0": "a NUL character",
  "\t": "a tab",
  " ": "a space",
};

function describeChar(char: string): string {
  const code = `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
  const name = CHAR_NAMES[char];
  if (name !== undefined) return `${name} (${code})`;
  if (/^[\x21-\x7e]$/.test(char)) return `"${char}"`;
  if (/^\p{Cc}$/u.test(char)) return `the control character ${code}`;
  return `"${char}" (${code})`;
}
