/**
 * Opaque ids with a type prefix that sort by creation time: `msg_01JD…`. The 26 characters after
 * the prefix are a ULID (48-bit millisecond time, 80 random bits, Crockford base32); ids made in
 * the same millisecond by one isolate stay in order by incrementing the random part.
 */
export type IdPrefix = "msg" | "sub" | "dlq" | "req";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

let lastTime = -1;
const lastRandom = new Uint8Array(10);

/** A new id such as `sub_01JDQ3Y5N6M7P8Q9R0S1T2V3W4`. */
export function newId(prefix: IdPrefix, now: number = Date.now()): string {
  if (now === lastTime) {
    increment(lastRandom);
  } else {
    lastTime = now;
    crypto.getRandomValues(lastRandom);
  }
  return `${prefix}_${encodeTime(now)}${encodeRandom(lastRandom)}`;
}

function encodeTime(ms: number): string {
  let out = "";
  let rest = ms;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET.charAt(rest % 32) + out;
    rest = Math.floor(rest / 32);
  }
  return out;
}

function encodeRandom(bytes: Uint8Array): string {
  // 80 bits = 16 base32 characters, read 5 bits at a time from the most significant end.
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET.charAt((buffer >> bits) & 31);
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}

function increment(bytes: Uint8Array): void {
  for (let i = bytes.length - 1; i >= 0; i--) {
    const next = (bytes[i] ?? 0) + 1;
    bytes[i] = next & 0xff;
    if (next <= 0xff) return;
  }
}

/**
 * The lowest id of type `prefix` that a time of `ms` or later could have: every id made before
 * `ms` sorts below it, so `id < idFloor(prefix, cutoff)` is a range of the primary key.
 */
export function idFloor(prefix: IdPrefix, ms: number): string {
  return `${prefix}_${encodeTime(ms)}${"0".repeat(16)}`;
}

/** The creation time an id carries, or undefined if it is not one of ours. */
export function timeOf(id: string): number | undefined {
  const match = /^[a-z]+_([0-9A-HJKMNP-TV-Z]{10})[0-9A-HJKMNP-TV-Z]{16}$/.exec(id);
  if (!match?.[1]) return undefined;
  let ms = 0;
  for (const char of match[1]) ms = ms * 32 + ALPHABET.indexOf(char);
  return ms;
}
