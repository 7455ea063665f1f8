import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/**
 * Two projects: `workers` runs inside workerd with the Worker's own bindings (the default for
 * every test); `node` runs the few tests that must live outside the runtime: the differential
 * tests against the filtrex package, the bundle check and the end-to-end run through the same
 * runtime as `wrangler dev`. Node-side files are named `*.node.test.ts`.
 */
export default defineConfig(async () => {
  // The Worker's secrets for the workerd tests. Set in the environment (which wrangler checks for
  // required secrets) and again as bindings, so that a developer's .dev.vars cannot change them.
  // Inline fan-out is off for the workerd tests, which walk each message through the fan-out
  // queue step by step; test/pipeline/inline-fanout.test.ts turns it on, and the end-to-end tests
  // run the Worker with wrangler.toml as it is, where it is on. Only the secrets go into the
  // environment: the end-to-end tests' local runtime, started from the node test processes,
  // takes any variable of wrangler.toml's that the environment also names, over wrangler.toml.
  const secrets = { ADMIN_TOKEN: "test-admin-token", PUBLISH_TOKEN: "test-publish-token" };
  const testVars = {
    ...secrets,
    ALLOW_PRIVATE_URLS: "false",
    INLINE_FANOUT_MAX_SUBSCRIBERS: "0",
  };
  Object.assign(process.env, secrets);
  const migrations = await readD1Migrations("migrations");
  return {
    test: {
      projects: [
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: { ...testVars, TEST_MIGRATIONS: migrations },
              },
            }),
          ],
          test: {
            name: "workers",
            include: ["test/**/*.test.ts"],
            exclude: ["test/**/*.node.test.ts"],
            setupFiles: ["./test/setup/apply-migrations.ts"],
          },
        },
        {
          test: {
            name: "node",
            include: ["test/**/*.node.test.ts"],
            environment: "node",
            testTimeout: 120_000,
            hookTimeout: 120_000,
          },
        },
      ],
    },
  };
});
