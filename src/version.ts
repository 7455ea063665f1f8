/** The broker's version, sent in `user-agent` and shown in the OpenAPI document. */
export const VERSION = "0.1.0";
