/**
 * What every loopback HTTP server of the tests, the soak and the benchmarks does alike: listen on
 * an ephemeral port of 127.0.0.1, read a request whole, and close without waiting for the
 * broker's keep-alive connections.
 */
import type { IncomingMessage, Server } from "node:http";
import type { AddressInfo } from "node:net";

/** Listens on an ephemeral loopback port; resolves with the origin, e.g. `http://127.0.0.1:5321`. */
export async function listenOnLoopback(server: Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

/** Stops the server; keep-alive connections from the broker would otherwise hold it open. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** The request's body, whole. */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Header names lower-cased (as Node gives them), repeated headers joined as Node joins them. */
export function flatHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return headers;
}
