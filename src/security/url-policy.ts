export type UrlPolicyResult = { ok: true; url: URL } | { ok: false; reason: string };

/** Longest subscriber URL accepted, counted in characters as written. */
export const MAX_URL_LENGTH = 2048;

const PUBLIC_ONLY = "only public https hosts are allowed";

/**
 * The contract's URL policy for subscriber URLs.
 *
 * Always: at most {@link MAX_URL_LENGTH} characters, parsable, `http:` or `https:`, no user name
 * or password, no fragment, and a host that is a well-formed name or IP literal. A fragment is
 * refused because it is never sent to the server, so it could only hide a mistake; a host with
 * `{…}` is refused because path parameters are filled in the path only.
 *
 * Unless `allowPrivate` is true (local development), also only `https:` and a public host: not
 * `localhost` or `*.localhost`, and not an IP literal in a loopback, private, link-local, CGNAT,
 * multicast, documentation, reserved or unspecified range. IPv4 spellings (decimal, octal, hex,
 * short forms) are normalised by the WHATWG URL parser, the same one `fetch` uses; IPv6 literals
 * that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by that address. Other
 * host names are not resolved: a Worker cannot, and Cloudflare's `fetch` does not reach private
 * networks. Any port is allowed.
 *
 * Path templates (`/orders/:orderId`, `/orders/{orderId}`) pass; `url` is the parsed URL, in
 * which `{` and `}` in the path appear as `%7B` and `%7D`.
 *
 * @example
 * checkSubscriberUrl("https://0x7f.1/hook", { allowPrivate: false });
 * // { ok: false, reason: "URL host 127.0.0.1 is a loopback address (127.0.0.0/8); only public https hosts are allowed" }
 */
export function checkSubscriberUrl(
  raw: string,
  options: { allowPrivate: boolean },
): UrlPolicyResult {
  if (raw.length > MAX_URL_LENGTH) {
    return refuse(`URL is ${raw.length} characters long; at most ${MAX_URL_LENGTH} are allowed`);
  }
  // The URL is stored as written, and D1 cannot store a lone surrogate (it would read back as
  // replacement characters, a different URL from the one checked here).
  if (!raw.isWellFormed()) return refuse("URL contains a lone surrogate (U+D800–U+DFFF)");
  // The parser would drop tabs and line breaks, trim spaces and encode the rest, so the URL
  // delivered to would not be the one stored and read back; invisible format characters (zero
  // widths, bidirectional overrides) can make one URL look like another.
  const hidden = HIDDEN_CHARACTER.exec(raw);
  if (hidden) {
    const code = hidden[0].codePointAt(0)?.toString(16).toUpperCase().padStart(4, "0");
    return refuse(
      `URL contains U+${code} (a control, space or invisible character) at position ${hidden.index}; percent-encode it`,
    );
  }
  const url = URL.parse(raw);
  if (url === null) return refuse("URL is not a valid absolute URL");
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return refuse(`URL scheme ${url.protocol} is not allowed; use https: (or http:)`);
  }
  if (url.username !== "" || url.password !== "") {
    return refuse("URL must not contain a user name or password; send credentials in headers");
  }
  if (url.href.includes("#")) {
    return refuse("URL must not contain a fragment (#…); fragments are never sent to the server");
  }
  const host = url.hostname;
  const hostProblem = host.startsWith("[") ? undefined : hostNameProblem(host);
  if (hostProblem !== undefined) return refuse(hostProblem);
  if (options.allowPrivate) return { ok: true, url };

  if (url.protocol !== "https:") {
    return refuse(
      "URL must use https:; plain http: is only allowed when private URLs are allowed (ALLOW_PRIVATE_URLS=true)",
    );
  }
  const nonPublic = host.startsWith("[")
    ? ipv6Problem(host.slice(1, -1))
    : localNameOrIpv4Problem(host);
  if (nonPublic !== undefined) return refuse(`URL host ${host} is ${nonPublic}; ${PUBLIC_ONLY}`);
  return { ok: true, url };
}

const HIDDEN_CHARACTER = /[\p{Cc}\p{Cf}\p{Z}]/u;

function refuse(reason: string): UrlPolicyResult {
  return { ok: false, reason };
}

/** Labels of letters, digits, `-` and `_`, with at most one trailing dot (the DNS root). */
function hostNameProblem(host: string): string | undefined {
  const labels = withoutTrailingDot(host).split(".");
  if (labels.every((label) => /^[a-z0-9_-]+$/.test(label))) return undefined;
  const hint = /[{}]/.test(host) ? "; path parameters can only be used in the path" : "";
  return `URL host ${host} is not a valid host name${hint}`;
}

function withoutTrailingDot(host: string): string {
  return host.endsWith(".") ? host.slice(0, -1) : host;
}

function localNameOrIpv4Problem(host: string): string | undefined {
  const name = withoutTrailingDot(host);
  if (name === "localhost" || name.endsWith(".localhost")) return "a local host name";
  const lastLabel = name.slice(name.lastIndexOf(".") + 1);
  // The WHATWG parser turns any host ending in a number into dotted decimal or fails, so a
  // numeric host in another shape means a different parser: refuse rather than guess.
  if (!/^(0x[0-9a-f]*|[0-9]+)$/i.test(lastLabel)) return undefined;
  const ip = parseDottedDecimal(name);
  if (ip === undefined) return "an IP address in a non-standard form";
  return ipv4Problem(ip);
}

function parseDottedDecimal(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p))) return undefined;
  const octets = parts.map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return octets.reduce((ip, octet) => ip * 256 + octet, 0);
}

type Range = readonly [network: string, bits: number, description: string];

// First match wins, so single addresses precede the blocks that contain them.
const NON_PUBLIC_IPV4: readonly Range[] = [
  ["0.0.0.0", 8, 'an unspecified ("this network") address'],
  ["10.0.0.0", 8, "a private address"],
  ["100.64.0.0", 10, "a carrier-grade NAT (shared) address"],
  ["127.0.0.0", 8, "a loopback address"],
  ["169.254.169.254", 32, "the link-local cloud metadata address"],
  ["169.254.0.0", 16, "a link-local address"],
  ["172.16.0.0", 12, "a private address"],
  ["192.0.0.0", 24, "a reserved (IETF protocol assignments) address"],
  ["192.0.2.0", 24, "a documentation address"],
  ["192.88.99.0", 24, "a reserved (deprecated 6to4 relay) address"],
  ["192.168.0.0", 16, "a private address"],
  ["198.18.0.0", 15, "a reserved (benchmarking) address"],
  ["198.51.100.0", 24, "a documentation address"],
  ["203.0.113.0", 24, "a documentation address"],
  ["224.0.0.0", 4, "a multicast address"],
  ["255.255.255.255", 32, "the broadcast address"],
  ["240.0.0.0", 4, "a reserved address"],
];

function ipv4Problem(ip: number): string | undefined {
  for (const [network, bits, description] of NON_PUBLIC_IPV4) {
    const size = 2 ** (32 - bits);
    if (Math.floor(ip / size) === Math.floor((parseDottedDecimal(network) ?? 0) / size)) {
      return bits === 32 ? description : `${description} (${network}/${bits})`;
    }
  }
  return undefined;
}

function formatIpv4(ip: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(ip / 2 ** shift) % 256).join(".");
}

const NON_PUBLIC_IPV6: readonly Range[] = [
  ["::", 128, "the unspecified address"],
  ["::1", 128, "the loopback address"],
  ["64:ff9b:1::", 48, "a local-use NAT64 address"],
  ["100::", 64, "a reserved (discard-only) address"],
  ["2001::", 23, "a reserved (IETF protocol assignments) address"],
  ["2001:db8::", 32, "a documentation address"],
  ["3fff::", 20, "a documentation address"],
  ["fc00::", 7, "a unique local (private) address"],
  ["fe80::", 10, "a link-local address"],
  ["fec0::", 10, "a site-local (private) address"],
  ["ff00::", 8, "a multicast address"],
];

// Prefixes that carry an IPv4 address in two of their words (`offset`), judged by that address.
// Only the mapped, NAT64 and 6to4 forms reach it over the Internet; the others are refused anyway.
const IPV4_EMBEDDING = [
  { network: "::ffff:0:0", bits: 96, name: "an IPv4-mapped", offset: 6, reachable: true },
  { network: "64:ff9b::", bits: 96, name: "a NAT64", offset: 6, reachable: true },
  { network: "2002::", bits: 16, name: "a 6to4", offset: 1, reachable: true },
  { network: "::ffff:0:0:0", bits: 96, name: "an IPv4-translated", offset: 6, reachable: false },
  { network: "::", bits: 96, name: "an IPv4-compatible", offset: 6, reachable: false },
] as const;

function ipv6Problem(text: string): string | undefined {
  const words = parseIpv6(text);
  if (words === undefined) return "an IPv6 address in a non-standard form";
  for (const [network, bits, description] of NON_PUBLIC_IPV6) {
    if (inPrefix(words, network, bits)) {
      return bits === 128 ? description : `${description} (${network}/${bits})`;
    }
  }
  const embedding = IPV4_EMBEDDING.find((e) => inPrefix(words, e.network, e.bits));
  if (embedding !== undefined) {
    const ipv4 = (words[embedding.offset] ?? 0) * 65536 + (words[embedding.offset + 1] ?? 0);
    const problem = ipv4Problem(ipv4);
    if (problem !== undefined) {
      return `${embedding.name} IPv6 address for ${formatIpv4(ipv4)}, which is ${problem}`;
    }
    if (embedding.reachable) return undefined;
  }
  if (!inPrefix(words, "2000::", 3)) {
    return "a reserved address (outside the global unicast range 2000::/3)";
  }
  return undefined;
}

function inPrefix(words: readonly number[], network: string, bits: number): boolean {
  const prefix = parseIpv6(network) ?? [];
  for (let i = 0, left = bits; left > 0; i++, left -= 16) {
    const mask = left >= 16 ? 0xffff : (0xffff << (16 - left)) & 0xffff;
    if (((words[i] ?? 0) & mask) !== ((prefix[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** Eight 16-bit words, from hex groups with at most one `::` and an optional dotted IPv4 tail. */
function parseIpv6(text: string): number[] | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = parseGroups(halves[0] ?? "");
  const tail = parseGroups(halves[1] ?? "");
  if (head === undefined || tail === undefined) return undefined;
  const zeros = 8 - head.length - tail.length;
  if (halves.length === 1 ? zeros !== 0 : zeros < 1) return undefined;
  return [...head, ...Array<number>(zeros).fill(0), ...tail];
}

function parseGroups(text: string): number[] | undefined {
  if (text === "") return [];
  const groups = text.split(":");
  const words: number[] = [];
  for (const [index, group] of groups.entries()) {
    const ipv4 = index === groups.length - 1 ? parseDottedDecimal(group) : undefined;
    if (ipv4 !== undefined) {
      words.push(Math.floor(ipv4 / 65536), ipv4 % 65536);
    } else if (/^[0-9a-f]{1,4}$/i.test(group)) {
      words.push(Number.parseInt(group, 16));
    } else {
      return undefined;
    }
  }
  return words;
}
