/**
 * Opaque list cursors: the sort key of the last item on a page, base64url-encoded, so that the
 * next page is `key > cursor` on an index and costs the same however deep it is.
 */
import { ApiError } from "./problem";

/** Encodes the last key of a page. */
export function encodeCursor(key: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(key)))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** Decodes a cursor from a client; a cursor this broker did not make is a validation error. */
export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined || cursor === "") return undefined;
  try {
    const binary = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    const bytes = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError("validation_failed", "cursor: is not a cursor this broker returned", {
      errors: [{ path: "cursor", message: "is not a cursor this broker returned" }],
    });
  }
}

/** Splits `limit + 1` fetched rows into a page and the cursor of the next one. */
export function page<T>(
  rows: T[],
  limit: number,
  keyOf: (row: T) => string,
): { items: T[]; nextCursor: string | null } {
  if (rows.length <= limit) return { items: rows, nextCursor: null };
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: last === undefined ? null : encodeCursor(keyOf(last)) };
}
