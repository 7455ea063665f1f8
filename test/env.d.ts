import type { D1Migration } from "@cloudflare/vitest-plugin";

declare global {
  namespace Cloudflare {
    interface GlobalProps {
      /** Types `exports` from `cloudflare:workers` as the Worker's own default export. */
      mainModule: typeof import("../src/index");
    }
    interface Env {
      /** The SQL migrations, read by vitest.config.ts and applied before each test file. */
      TEST_MIGRATIONS: D1Migration[];
    }
  }
}
