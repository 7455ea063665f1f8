/** Turns a validated envelope into the pieces the pipeline carries. */
import type { Envelope } from "../api/schemas/envelope";
import { normalizeHeaders } from "../http/headers";
import { BYTES_CONTENT_TYPE, JSON_CONTENT_TYPE, type MessageBody, TEXT_CONTENT_TYPE } from "./body";

/** The envelope's body in pipeline form, with the content type it will be delivered with. */
export function messageBodyOf(envelope: Envelope): MessageBody {
  if (envelope.bodyBase64 !== undefined) {
    return {
      kind: "bytes",
      base64: envelope.bodyBase64,
      contentType: envelope.contentType ?? BYTES_CONTENT_TYPE,
    };
  }
  if (envelope.bodyText !== undefined) {
    return {
      kind: "text",
      text: envelope.bodyText,
      contentType: envelope.contentType ?? TEXT_CONTENT_TYPE,
    };
  }
  if (envelope.body !== undefined) {
    return {
      kind: "json",
      value: envelope.body,
      contentType: envelope.contentType ?? JSON_CONTENT_TYPE,
    };
  }
  return { kind: "none" };
}

/** The request-shaping parts of an envelope, with header names lower-cased. */
export function requestPartsOf(envelope: Envelope) {
  return {
    headers: normalizeHeaders(envelope.headers ?? {}),
    query: envelope.query ?? {},
    pathParams: envelope.pathParams ?? {},
    method: envelope.method ?? null,
  };
}
