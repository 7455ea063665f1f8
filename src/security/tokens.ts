/**
 * Constant-time comparison of bearer tokens. Both sides are hashed first so that the comparison
 * runs over equal-length buffers and leaks neither the content nor the length of the secret.
 */
const encoder = new TextEncoder();

async function digest(value: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", encoder.encode(value));
}

/** True when `candidate` equals `secret`, in time independent of where they differ. */
export async function tokensEqual(candidate: string, secret: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(candidate), digest(secret)]);
  return crypto.subtle.timingSafeEqual(a, b);
}
