import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkSubscriberUrl, MAX_URL_LENGTH } from "../../src/security/url-policy";

const publicOnly = { allowPrivate: false };
const privateAllowed = { allowPrivate: true };

function reasonFor(raw: string, options = publicOnly): string {
  const result = checkSubscriberUrl(raw, options);
  if (result.ok) throw new Error(`expected ${raw} to be refused, got ${result.url.href}`);
  return result.reason;
}

describe("the URL parser the policy relies on", () => {
  it.each([
    ["https://2130706433/", "127.0.0.1"],
    ["https://0177.0.0.1/", "127.0.0.1"],
    ["https://0x7f.0.0.1/", "127.0.0.1"],
    ["https://0x7F000001/", "127.0.0.1"],
    ["https://017700000001/", "127.0.0.1"],
    ["https://127.1/", "127.0.0.1"],
    ["https://127.0.1/", "127.0.0.1"],
    ["https://10.1/", "10.0.0.1"],
    ["https://0x7f.1/", "127.0.0.1"],
    ["https://0x7f.0.0x0.01/", "127.0.0.1"],
    ["https://127.0.0.1./", "127.0.0.1"],
    ["https://%31%32%37.0.0.1/", "127.0.0.1"],
    ["https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "127.0.0.1"],
    ["https://0/", "0.0.0.0"],
    ["https://4294967295/", "255.255.255.255"],
    ["https://[::ffff:127.0.0.1]/", "[::ffff:7f00:1]"],
    ["https://[0:0:0:0:0:ffff:127.0.0.1]/", "[::ffff:7f00:1]"],
    ["https://[::127.0.0.1]/", "[::7f00:1]"],
    ["https://[0000:0000::0001]/", "[::1]"],
    ["https://[FE80::1]/", "[fe80::1]"],
    ["https://LOCALHOST/", "localhost"],
    ["https://localhost./", "localhost."],
    ["HTTPS://Api.Example.COM/", "api.example.com"],
  ])("normalises the host of %s to %s", (raw, hostname) => {
    expect(new URL(raw).hostname).toBe(hostname);
  });

  it.each([
    "https://1.2.3.4.5/",
    "https://08.0.0.1/",
    "https://4294967296/",
    "https://256.0.0.1/",
    "https://[fe80::1%25eth0]/",
    "https://[1::2::3]/",
  ])("fails to parse %s, so the policy refuses it as unparsable", (raw) => {
    expect(URL.parse(raw)).toBeNull();
    expect(reasonFor(raw)).toBe("URL is not a valid absolute URL");
  });
});

describe("checkSubscriberUrl with public hosts only", () => {
  it.each([
    "https://api.example.com/hooks",
    "https://api.example.com:8443/hooks?x=1",
    "https://api.example.com./hooks",
    "https://API.Example.com/Hooks",
    "https://xn--bcher-kva.example/",
    "https://b\u00fccher.example/",
    "https://a_b.example.com/",
    "https://localhost.example.com/",
    "https://mylocalhost/",
    "https://127.0.0.1.nip.io/",
    "https://8.8.8.8/",
    "https://1.1.1.1:443/dns",
    "https://93.184.216.34/",
    "https://100.63.255.255/",
    "https://100.128.0.0/",
    "https://172.15.255.255/",
    "https://172.32.0.0/",
    "https://169.253.255.255/",
    "https://192.0.1.1/",
    "https://198.17.255.255/",
    "https://198.20.0.0/",
    "https://223.255.255.255/",
    "https://11.0.0.1/",
    "https://[2606:4700:4700::1111]/",
    "https://[2a00:1450:4001:80b::200e]/",
    "https://[::ffff:8.8.8.8]/",
    "https://[64:ff9b::8.8.8.8]/",
    "https://[2002:808:808::1]/",
    "https://api.example.com/orders/:orderId",
    "https://api.example.com/orders/{orderId}/items/:itemId?v=1",
    "https://api.example.com/v{version}/files/{name}.json",
  ])("accepts %s", (raw) => {
    const result = checkSubscriberUrl(raw, publicOnly);
    expect(result).toMatchObject({ ok: true });
    expect(result.ok && result.url.href).toBe(new URL(raw).href);
  });

  it("keeps path templates in the parsed URL, braces percent-encoded", () => {
    const result = checkSubscriberUrl("https://h.example/orders/{orderId}/:line", publicOnly);
    expect(result.ok && result.url.pathname).toBe("/orders/%7BorderId%7D/:line");
  });

  it.each([
    ["file:///etc/passwd", "file:"],
    ["ftp://ftp.example.com/x", "ftp:"],
    ["javascript:alert(1)", "javascript:"],
    ["data:text/plain,hi", "data:"],
    ["gopher://example.com/", "gopher:"],
    ["ws://example.com/", "ws:"],
    ["wss://example.com/", "wss:"],
    ["mailto:a@example.com", "mailto:"],
  ])("refuses the scheme of %s", (raw, scheme) => {
    expect(reasonFor(raw)).toBe(`URL scheme ${scheme} is not allowed; use https: (or http:)`);
    expect(reasonFor(raw, privateAllowed)).toBe(reasonFor(raw));
  });

  it.each([
    "https://user@api.example.com/",
    "https://user:pass@api.example.com/",
    "https://:pass@api.example.com/",
    "https://user%40corp:p%3Ass@api.example.com/",
    "http://admin:admin@127.0.0.1/",
  ])("refuses credentials in %s, even when private URLs are allowed", (raw) => {
    const reason = "URL must not contain a user name or password; send credentials in headers";
    expect(reasonFor(raw, privateAllowed)).toBe(reason);
    expect(reasonFor(raw)).toMatch(/user name or password|https/);
  });

  it("treats an empty user info (https://@host) as no credentials", () => {
    expect(checkSubscriberUrl("https://@api.example.com/", publicOnly)).toMatchObject({
      ok: true,
    });
  });

  it.each([
    "https://api.example.com/#top",
    "https://api.example.com/x?y=1#",
    "https://a.example/#",
  ])("refuses the fragment in %s", (raw) => {
    const reason = "URL must not contain a fragment (#…); fragments are never sent to the server";
    expect(reasonFor(raw)).toBe(reason);
    expect(reasonFor(raw, privateAllowed)).toBe(reason);
  });

  it.each(["http://api.example.com/", "http://8.8.8.8/", "HTTP://API.EXAMPLE.COM/"])(
    "refuses plain http in %s",
    (raw) => {
      expect(reasonFor(raw)).toBe(
        "URL must use https:; plain http: is only allowed when private URLs are allowed (ALLOW_PRIVATE_URLS=true)",
      );
    },
  );

  it.each([
    "https://localhost/",
    "https://localhost./",
    "https://LOCALHOST/",
    "https://LocalHost.:8443/x",
    "https://a.localhost/",
    "https://a.b.LOCALHOST./",
    "https://localhost%2e/",
  ])("refuses the local host name in %s", (raw) => {
    expect(reasonFor(raw)).toMatch(
      /^URL host [a-z.]*localhost\.? is a local host name; only public https hosts are allowed$/,
    );
  });

  it("words a refusal so a user understands it", () => {
    expect(reasonFor("https://127.0.0.1/")).toBe(
      "URL host 127.0.0.1 is a loopback address (127.0.0.0/8); only public https hosts are allowed",
    );
    expect(reasonFor("https://[::ffff:7f00:1]/")).toBe(
      "URL host [::ffff:7f00:1] is an IPv4-mapped IPv6 address for 127.0.0.1, which is a loopback address (127.0.0.0/8); only public https hosts are allowed",
    );
  });

  it.each([
    // IPv4 in every spelling the parser accepts
    ["https://127.0.0.1/", "a loopback address (127.0.0.0/8)"],
    ["https://127.255.255.254/", "a loopback address"],
    ["https://2130706433/", "a loopback address"],
    ["https://0177.0.0.1/", "a loopback address"],
    ["https://0x7f.0.0.1/", "a loopback address"],
    ["https://0x7F000001/", "a loopback address"],
    ["https://127.1/", "a loopback address"],
    ["https://0x7f.1/", "a loopback address"],
    ["https://127.0.0.1.:8443/x", "a loopback address"],
    ["https://%31%32%37.0.0.1/", "a loopback address"],
    ["https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "a loopback address"],
    ["https://10.1/", "a private address (10.0.0.0/8)"],
    ["https://10.255.255.255/", "a private address (10.0.0.0/8)"],
    ["https://167772161/", "a private address (10.0.0.0/8)"],
    ["https://012.0.0.1/", "a private address (10.0.0.0/8)"],
    ["https://172.16.0.1/", "a private address (172.16.0.0/12)"],
    ["https://172.31.255.255/", "a private address (172.16.0.0/12)"],
    ["https://192.168.1.1/", "a private address (192.168.0.0/16)"],
    ["https://0xc0.0xa8.1.1/", "a private address (192.168.0.0/16)"],
    ["https://192.168.257/", "a private address (192.168.0.0/16)"],
    ["https://100.64.0.1/", "a carrier-grade NAT (shared) address (100.64.0.0/10)"],
    ["https://100.127.255.255/", "a carrier-grade NAT (shared) address"],
    ["https://169.254.0.1/", "a link-local address (169.254.0.0/16)"],
    ["https://169.254.169.254/", "the link-local cloud metadata address"],
    ["https://2852039166/", "the link-local cloud metadata address"],
    ["https://0.0.0.0/", 'an unspecified ("this network") address (0.0.0.0/8)'],
    ["https://0/", 'an unspecified ("this network") address'],
    ["https://0.1.2.3/", 'an unspecified ("this network") address'],
    ["https://192.0.0.8/", "a reserved (IETF protocol assignments) address (192.0.0.0/24)"],
    ["https://192.0.2.1/", "a documentation address (192.0.2.0/24)"],
    ["https://198.51.100.7/", "a documentation address (198.51.100.0/24)"],
    ["https://203.0.113.9/", "a documentation address (203.0.113.0/24)"],
    ["https://192.88.99.1/", "a reserved (deprecated 6to4 relay) address (192.88.99.0/24)"],
    ["https://198.18.0.1/", "a reserved (benchmarking) address (198.18.0.0/15)"],
    ["https://198.19.255.255/", "a reserved (benchmarking) address"],
    ["https://224.0.0.1/", "a multicast address (224.0.0.0/4)"],
    ["https://239.255.255.250/", "a multicast address"],
    ["https://240.0.0.1/", "a reserved address (240.0.0.0/4)"],
    ["https://254.1.1.1/", "a reserved address"],
    ["https://255.255.255.255/", "the broadcast address"],
    ["https://4294967295/", "the broadcast address"],
    // IPv6
    ["https://[::1]/", "the loopback address"],
    ["https://[0:0:0:0:0:0:0:1]/", "the loopback address"],
    ["https://[::]/", "the unspecified address"],
    ["https://[fc00::1]/", "a unique local (private) address (fc00::/7)"],
    ["https://[fd12:3456:789a::1]/", "a unique local (private) address"],
    ["https://[fe80::1]/", "a link-local address (fe80::/10)"],
    ["https://[febf::1]/", "a link-local address"],
    ["https://[fec0::1]/", "a site-local (private) address (fec0::/10)"],
    ["https://[ff02::1]/", "a multicast address (ff00::/8)"],
    ["https://[ff05::1:3]/", "a multicast address"],
    ["https://[2001:db8::1]/", "a documentation address (2001:db8::/32)"],
    ["https://[3fff::1]/", "a documentation address (3fff::/20)"],
    ["https://[100::1]/", "a reserved (discard-only) address (100::/64)"],
    ["https://[2001::1]/", "a reserved (IETF protocol assignments) address (2001::/23)"],
    ["https://[64:ff9b:1::a00:1]/", "a local-use NAT64 address (64:ff9b:1::/48)"],
    ["https://[4000::1]/", "a reserved address (outside the global unicast range 2000::/3)"],
    ["https://[5f00::1]/", "a reserved address (outside the global unicast range"],
    // IPv6 that embeds a non-public IPv4
    [
      "https://[::ffff:127.0.0.1]/",
      "an IPv4-mapped IPv6 address for 127.0.0.1, which is a loopback",
    ],
    ["https://[::ffff:7f00:1]/", "an IPv4-mapped IPv6 address for 127.0.0.1"],
    [
      "https://[0:0:0:0:0:ffff:10.0.0.1]/",
      "an IPv4-mapped IPv6 address for 10.0.0.1, which is a private",
    ],
    [
      "https://[::ffff:a9fe:a9fe]/",
      "an IPv4-mapped IPv6 address for 169.254.169.254, which is the link-local cloud metadata",
    ],
    ["https://[::ffff:0.0.0.0]/", "an IPv4-mapped IPv6 address for 0.0.0.0"],
    [
      "https://[::127.0.0.1]/",
      "an IPv4-compatible IPv6 address for 127.0.0.1, which is a loopback",
    ],
    ["https://[::192.168.0.1]/", "an IPv4-compatible IPv6 address for 192.168.0.1"],
    ["https://[::8.8.8.8]/", "a reserved address (outside the global unicast range"],
    ["https://[::ffff:0:7f00:1]/", "an IPv4-translated IPv6 address for 127.0.0.1"],
    ["https://[::ffff:0:808:808]/", "a reserved address (outside the global unicast range"],
    ["https://[64:ff9b::10.0.0.1]/", "a NAT64 IPv6 address for 10.0.0.1, which is a private"],
    ["https://[64:ff9b::7f00:1]/", "a NAT64 IPv6 address for 127.0.0.1"],
    ["https://[64:ff9b::a9fe:a9fe]/", "a NAT64 IPv6 address for 169.254.169.254"],
    ["https://[2002:7f00:1::]/", "a 6to4 IPv6 address for 127.0.0.1, which is a loopback"],
    ["https://[2002:c0a8:101::1]/", "a 6to4 IPv6 address for 192.168.1.1, which is a private"],
    ["https://[2002:a00:1:ffff::]/", "a 6to4 IPv6 address for 10.0.0.1"],
  ])("refuses %s as %s", (raw, description) => {
    const reason = reasonFor(raw);
    expect(reason).toMatch(/^URL host \S+ is /);
    expect(reason).toContain(`is ${description}`);
    expect(reason).toMatch(/; only public https hosts are allowed$/);
  });

  it.each([
    ["https://{tenant}.example.com/hook", "{tenant}.example.com", true],
    ["https://a%7Bb%7D.example/", "a{b}.example", true],
    ["https://a..b.example/", "a..b.example", false],
    ["https://.example.com/", ".example.com", false],
    ["https://example.com../", "example.com..", false],
    ["https://a!b.example/", "a!b.example", false],
    ["https://a$b.example/", "a$b.example", false],
    ["https://a*b.example/", "a*b.example", false],
  ])(
    "refuses the malformed host name in %s, even when private URLs are allowed",
    (raw, host, braces) => {
      const hint = braces ? "; path parameters can only be used in the path" : "";
      const reason = `URL host ${host} is not a valid host name${hint}`;
      expect(reasonFor(raw, privateAllowed)).toBe(reason);
      expect(reasonFor(raw)).toBe(reason);
    },
  );

  it("refuses a URL longer than the limit and accepts one at the limit", () => {
    const base = "https://api.example.com/";
    const atLimit = base + "a".repeat(MAX_URL_LENGTH - base.length);
    expect(checkSubscriberUrl(atLimit, publicOnly).ok).toBe(true);
    expect(reasonFor(`${atLimit}a`)).toBe(
      `URL is ${MAX_URL_LENGTH + 1} characters long; at most ${MAX_URL_LENGTH} are allowed`,
    );
  });

  it.each([
    "",
    "api.example.com/hook",
    "/hook",
    "https://",
    "https://[::1",
    "https://:tenant.example.com/",
    "not-a-url",
  ])("refuses the unparsable %j", (raw) => {
    expect(reasonFor(raw)).toBe("URL is not a valid absolute URL");
  });

  it.each([
    ["https://api.example.com/a\nb", "000A", 25],
    ["https://api.exa\r\nmple.com/", "000D", 15],
    ["https://api.exa\tmple.com/", "0009", 15],
    [" https://api.example.com/", "0020", 0],
    ["https://api.example.com/ ", "0020", 24],
    ["https://ex ample.com/", "0020", 10],
    ["https://api.example.com/a\u00a0b", "00A0", 25],
    ["https://api.example.com/\u007f", "007F", 24],
    ["https://api.example.com/\u0085", "0085", 24],
    ["https://api\u200b.example.com/", "200B", 11],
    ["https://api.example.com/\u200dhook", "200D", 24],
    ["https://api.example.com/\u202egnp.exe", "202E", 24],
    ["https://api.example.com/\ufeff", "FEFF", 24],
  ])("refuses %j, whose U+%s the parser would drop or encode", (raw, code, position) => {
    expect(reasonFor(raw)).toBe(
      `URL contains U+${code} (a control, space or invisible character) at position ${position}; percent-encode it`,
    );
  });

  it.each([
    "https://例え.jp/パス?q=値",
    "https://api.example.com/caf%C3%A9",
    "https://api.example.com/a%20b",
  ])("accepts %s: Unicode and percent-encoded characters are not hidden", (raw) => {
    expect(checkSubscriberUrl(raw, publicOnly).ok).toBe(true);
  });
});

describe("checkSubscriberUrl with private URLs allowed", () => {
  it.each([
    "http://127.0.0.1:8787/hook",
    "http://localhost:3000/hook",
    "https://localhost/hook",
    "http://a.localhost/x",
    "http://[::1]:8080/",
    "http://10.0.0.5/",
    "http://192.168.1.10/orders/:orderId",
    "http://169.254.169.254/",
    "http://2130706433/",
    "http://api.example.com/",
    "https://api.example.com/",
  ])("accepts %s", (raw) => {
    expect(checkSubscriberUrl(raw, privateAllowed)).toMatchObject({ ok: true });
  });

  it.each([
    ["credentials", "http://user:pw@127.0.0.1/", "user name or password"],
    ["a file: URL", "file:///etc/passwd", "scheme file:"],
    ["a fragment", "http://localhost/#x", "fragment"],
    ["a URL that is too long", `http://localhost/${"a".repeat(MAX_URL_LENGTH)}`, "characters long"],
  ])("still refuses %s", (_, raw, part) => {
    expect(reasonFor(raw, privateAllowed)).toContain(part);
  });
});

describe("checkSubscriberUrl on generated addresses", () => {
  const spellings = (ip: number): string[] => {
    const octets = [24, 16, 8, 0].map((shift) => (ip >>> shift) & 255);
    return [
      octets.join("."),
      String(ip),
      `0x${ip.toString(16)}`,
      octets.map((o) => `0${o.toString(8)}`).join("."),
      octets.map((o) => `0x${o.toString(16)}`).join("."),
      `${octets[0]}.${(ip & 0xffffff) >>> 0}`,
      `${octets[0]}.${octets[1]}.${ip & 0xffff}`,
      `[::ffff:${octets.join(".")}]`,
      `[64:ff9b::${octets.join(".")}]`,
      `[2002:${((ip >>> 16) & 0xffff).toString(16)}:${(ip & 0xffff).toString(16)}::1]`,
    ];
  };
  const inBlock = (network: number, bits: number) =>
    fc.integer({ min: 0, max: 2 ** (32 - bits) - 1 }).map((offset) => (network + offset) >>> 0);
  const nonPublic = fc.oneof(
    inBlock(0x7f000000, 8),
    inBlock(0x0a000000, 8),
    inBlock(0xac100000, 12),
    inBlock(0xc0a80000, 16),
    inBlock(0xa9fe0000, 16),
    inBlock(0x64400000, 10),
    inBlock(0x00000000, 8),
    inBlock(0xe0000000, 3),
  );

  it("refuses every spelling of a non-public IPv4 address", () => {
    fc.assert(
      fc.property(nonPublic, (ip) => {
        for (const host of spellings(ip)) {
          const result = checkSubscriberUrl(`https://${host}/x`, publicOnly);
          expect(result.ok, host).toBe(false);
        }
      }),
    );
  });

  it("accepts every spelling of a public IPv4 address", () => {
    fc.assert(
      fc.property(inBlock(0x08000000, 8), (ip) => {
        for (const host of spellings(ip)) {
          expect(checkSubscriberUrl(`https://${host}/x`, publicOnly).ok, host).toBe(true);
        }
      }),
    );
  });
});
