/**
 * A fresh idempotency key: a random UUID. `crypto.randomUUID` is missing on plain-http pages and,
 * with the rest of Web Crypto, from Node 18's globals; the fallbacks still give 122 random bits,
 * and a key needs to be unique, not secret.
 *
 * @example newIdempotencyKey(); // "3b241101-e2bb-4255-8caf-4136c566a962"
 */
export function newIdempotencyKey(): string {
  const webCrypto: Partial<Crypto> | undefined = typeof crypto === "undefined" ? undefined : crypto;
  if (typeof webCrypto?.randomUUID === "function") return webCrypto.randomUUID();
  const bytes = new Uint8Array(16);
  if (typeof webCrypto?.getRandomValues === "function") webCrypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
