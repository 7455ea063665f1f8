/**
 * The subscriber side of the measurements: one loopback HTTP server that answers 200 at once and
 * counts arrivals per channel (the first path segment, e.g. `/e2e` or `/fanout/123`), so the broker
 * and the baseline Worker are measured against the same receiver.
 */
import { createServer, type Server } from "node:http";
import { closeServer, listenOnLoopback } from "../../test/node/loopback-server";

export interface ChannelStats {
  /** Requests received, duplicates included. */
  arrivals: number;
  /**
   * Distinct (`webhook-id`, path) pairs: the id is the message's, the same for every subscriber,
   * so the path tells subscribers apart. Requests without an id count as distinct.
   */
  distinct: number;
  /** Requests whose `switchboard-attempt` was above 1. */
  retries: number;
  /** `performance.now()` of the first and the latest arrival. */
  firstAt: number | undefined;
  lastAt: number | undefined;
}

interface Channel extends ChannelStats {
  ids: Set<string>;
}

export interface Sink {
  /** Origin without a trailing slash, e.g. `http://127.0.0.1:53211`. */
  url: string;
  stats(channel: string): ChannelStats;
  /** Forgets what a channel has received, so the next run counts from zero. */
  reset(channel: string): void;
  /** Resolves once `channel` has `distinct` distinct arrivals; fails after `timeoutMs`. */
  waitFor(channel: string, distinct: number, timeoutMs: number): Promise<ChannelStats>;
  close(): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  const channels = new Map<string, Channel>();
  const waiters = new Set<() => void>();
  const channelOf = (name: string): Channel => {
    let channel = channels.get(name);
    if (!channel) {
      channel = {
        arrivals: 0,
        distinct: 0,
        retries: 0,
        firstAt: undefined,
        lastAt: undefined,
        ids: new Set(),
      };
      channels.set(name, channel);
    }
    return channel;
  };

  const server: Server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const now = performance.now();
      const name = (req.url ?? "/").split(/[/?]/)[1] ?? "";
      const channel = channelOf(name);
      channel.arrivals++;
      channel.firstAt ??= now;
      channel.lastAt = now;
      const header = req.headers["webhook-id"];
      const id = typeof header === "string" ? `${header} ${req.url}` : undefined;
      if (id === undefined || !channel.ids.has(id)) {
        channel.distinct++;
        if (id !== undefined) channel.ids.add(id);
      }
      if (Number(req.headers["switchboard-attempt"] ?? "1") > 1) channel.retries++;
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      for (const wake of waiters) wake();
    });
    req.on("error", () => res.destroy());
  });
  server.keepAliveTimeout = 60_000;
  const url = await listenOnLoopback(server);

  const snapshot = (name: string): ChannelStats => {
    const { ids: _ids, ...stats } = channelOf(name);
    return stats;
  };

  return {
    url,
    stats: snapshot,
    reset(name) {
      channels.delete(name);
    },
    waitFor(name, distinct, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (channelOf(name).distinct < distinct) return;
          finish();
          resolve(snapshot(name));
        };
        const timer = setTimeout(() => {
          finish();
          const seen = channelOf(name).distinct;
          reject(new Error(`sink /${name}: ${seen} of ${distinct} arrived within ${timeoutMs} ms`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    close() {
      return closeServer(server);
    },
  };
}
