/**
 * A message body in the one form the pipeline carries, whichever way it was published: a JSON
 * value, text, or bytes (base64), each with the content type it is delivered with.
 */
export type MessageBody =
  | { kind: "none" }
  | { kind: "json"; value: unknown; contentType: string }
  | { kind: "text"; text: string; contentType: string }
  | { kind: "bytes"; base64: string; contentType: string };

export const JSON_CONTENT_TYPE = "application/json";
export const TEXT_CONTENT_TYPE = "text/plain; charset=utf-8";
export const BYTES_CONTENT_TYPE = "application/octet-stream";

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const TEXT_TYPE =
  /^(?:text\/|application\/(?:[\w.+-]+\+)?(?:json|xml)\s*(?:;|$)|application\/(?:javascript|x-www-form-urlencoded|yaml|x-yaml|graphql)\s*(?:;|$))/i;

/** True for `application/json` and `application/*+json`. */
export function isJsonContentType(contentType: string): boolean {
  return JSON_TYPE.test(contentType);
}

/** True for content types whose bytes are text (text/*, JSON, XML, forms …). */
export function isTextContentType(contentType: string): boolean {
  return TEXT_TYPE.test(contentType);
}

/**
 * What a filter sees as `body`: the JSON value; for text with a JSON content type the parsed JSON
 * (the text if it does not parse); for other text the text; for binary bodies and none, null.
 */
export function filterBody(body: MessageBody): unknown {
  switch (body.kind) {
    case "none":
      return null;
    case "json":
      return body.value;
    case "text":
      return textForFilter(body.text, body.contentType);
    case "bytes":
      return isTextContentType(body.contentType)
        ? textForFilter(decodeUtf8(base64ToBytes(body.base64)), body.contentType)
        : null;
  }
}

function textForFilter(text: string, contentType: string): unknown {
  if (!isJsonContentType(contentType)) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The bytes sent to a subscriber. */
export function bodyBytes(body: MessageBody): Uint8Array {
  switch (body.kind) {
    case "none":
      return new Uint8Array();
    case "json":
      return new TextEncoder().encode(JSON.stringify(body.value));
    case "text":
      return new TextEncoder().encode(body.text);
    case "bytes":
      return base64ToBytes(body.base64);
  }
}

const BASE64 =
  /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

/** True for standard base64 (padding optional, no whitespace). */
export function isBase64(value: string): boolean {
  return BASE64.test(value);
}

/** Decodes standard base64; assumes `isBase64`. */
export function base64ToBytes(base64: string): Uint8Array<ArrayBuffer> {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Encodes bytes as standard base64, in slices so that a 1 MiB body does not overflow the stack. */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) {
    binary += String.fromCharCode(...bytes.subarray(i, i + step));
  }
  return btoa(binary);
}

/** The decoded size of base64 text, without decoding it. */
export function base64DecodedLength(base64: string): number {
  const padding = base64.endsWith("==") ? 2 : base64.endsWith("=") ? 1 : 0;
  const length = base64.length - padding;
  return Math.floor((length * 3) / 4);
}

function decodeUtf8(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}
