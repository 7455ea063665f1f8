/** Switchboard: one Worker that serves the API, consumes its queues and runs retention. */
import { app } from "./api/app";
import { handleQueue } from "./queues/handler";
import { runRetention } from "./retention/scheduled";

export default {
  fetch: app.fetch,
  queue: handleQueue,
  async scheduled(controller, env, ctx) {
    ctx.waitUntil(runRetention(env, controller.scheduledTime));
  },
} satisfies ExportedHandler<Env>;
