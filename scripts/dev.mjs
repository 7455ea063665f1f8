#!/usr/bin/env node
/**
 * `npm run dev [-- <wrangler dev options>]`: prepares local secrets and the local database, then
 * runs `wrangler dev` with the given options, e.g. `npm run dev -- --port 9000`.
 *
 * 1. Copies `.dev.vars.example` to `.dev.vars` when there is none, so a fresh clone starts with
 *    working local secrets. An existing `.dev.vars` is never touched.
 * 2. Applies the D1 migrations to the local database. `--config`, `--env` and `--persist-to` are
 *    passed to this step too, so it migrates the database that `wrangler dev` will open.
 * 3. Runs `wrangler dev`, forwards termination signals to it and exits with its status.
 */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { constants } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const devArgs = process.argv.slice(2);

/** Options of `wrangler dev` that also decide which local database the migrations must reach. */
const sharedOptions = new Set(["--config", "-c", "--env", "-e", "--persist-to"]);

/** The wrangler CLI must run on Node 22; npm scripts provide it from the `node` devDependency. */
const minimumNode = [22, 12];

/** The child currently running, so a signal reaches whichever step is in progress. */
let child;
/** A termination signal received so far: no further step starts after one. */
let stopSignal;

async function main() {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  if (major < minimumNode[0] || (major === minimumNode[0] && minor < minimumNode[1])) {
    console.error(
      `dev: Node ${process.versions.node} is too old for wrangler (needs ${minimumNode.join(".")}+).` +
        " Start it with `npm run dev`, which uses the Node 22 from node_modules.",
    );
    return 1;
  }
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    // A terminal's Ctrl-C reaches the child too; forwarding covers a signal sent to this process
    // alone (a process manager, `kill`). Staying alive until the child exits keeps its status.
    process.on(signal, () => {
      stopSignal = signal;
      child?.kill(signal);
    });
  }
  ensureDevVars();
  const wrangler = wranglerBin();
  if (existsSync(join(root, "migrations"))) {
    const migrate = ["d1", "migrations", "apply", "switchboard", "--local", ...pickShared(devArgs)];
    const status = await run(wrangler, migrate, {
      // No stdin and CI set: wrangler takes the default answer instead of asking to confirm.
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, CI: "true" },
    });
    if (status !== 0) {
      console.error("dev: applying the local D1 migrations failed; not starting wrangler dev.");
      return status;
    }
  } else {
    console.log("dev: no migrations/ folder yet; skipping the local D1 migrations.");
  }
  return run(wrangler, ["dev", ...devArgs], { stdio: "inherit" });
}

function ensureDevVars() {
  const devVars = join(root, ".dev.vars");
  if (existsSync(devVars)) return;
  copyFileSync(join(root, ".dev.vars.example"), devVars);
  console.log(
    "dev: created .dev.vars from .dev.vars.example (local-only secrets; edit as needed).",
  );
}

/** The project's own wrangler, run on this Node (npm scripts start this script on Node 22). */
function wranglerBin() {
  const require = createRequire(join(root, "package.json"));
  const manifestPath = require.resolve("wrangler/package.json");
  const { bin } = JSON.parse(readFileSync(manifestPath, "utf8"));
  return join(dirname(manifestPath), typeof bin === "string" ? bin : bin.wrangler);
}

/** Keeps the shared options, in both the `--name value` and `--name=value` spellings. */
function pickShared(args) {
  const picked = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const name = arg.split("=", 1)[0];
    if (!sharedOptions.has(name)) continue;
    if (arg.includes("=")) {
      picked.push(arg);
    } else if (i + 1 < args.length) {
      picked.push(arg, args[i + 1]);
      i++;
    }
  }
  return picked;
}

/** Runs a wrangler command to its end and resolves with the status a shell would report. */
function run(script, args, options) {
  if (stopSignal !== undefined) return Promise.resolve(exitCode(null, stopSignal));
  return new Promise((resolvePromise) => {
    child = spawn(process.execPath, [script, ...args], { cwd: root, ...options });
    child.on("error", (error) => {
      console.error(`dev: could not start wrangler: ${error.message}`);
      resolvePromise(1);
    });
    child.on("exit", (code, signal) => {
      child = undefined;
      resolvePromise(exitCode(code, signal));
    });
  });
}

/** The status a shell reports for a child: its code, or 128 + the number of the killing signal. */
function exitCode(code, signal) {
  if (code !== null) return code;
  return 128 + (constants.signals[signal] ?? 0);
}

process.exit(await main());
