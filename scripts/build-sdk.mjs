/**
 * `npm run build`: the SDK as ESM with declarations (dist/sdk) and the CLI as one Node script
 * (dist/cli/index.mjs). `node scripts/build-sdk.mjs --outdir <dir>` builds into another folder.
 *
 * The SDK's types come from the API's zod schemas. Declarations as tsc writes them would keep
 * pointing there, and so ship the whole Worker's types with zod's; instead, each type in
 * src/sdk/types.ts is expanded to its plain structure, and the build fails if any declaration
 * still reaches outside the SDK.
 */
import { execFileSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const { values } = parseArgs({ options: { outdir: { type: "string" } } });
const outdir = resolve(root, values.outdir ?? "dist");
const sdkOut = join(outdir, "sdk");
const cliOut = join(outdir, "cli");

await rm(sdkOut, { recursive: true, force: true });
await rm(cliOut, { recursive: true, force: true });
await buildSdk();
await buildCli();
await buildDeclarations();

async function buildSdk() {
  const { metafile } = await build({
    absWorkingDir: root,
    entryPoints: { index: "src/sdk/index.ts", hono: "src/sdk/hono.ts" },
    outdir: sdkOut,
    bundle: true,
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    format: "esm",
    platform: "neutral",
    target: "es2022",
    metafile: true,
    logLevel: "warning",
  });
  const outside = Object.keys(metafile.inputs).filter((input) => !input.startsWith("src/sdk/"));
  if (outside.length > 0) fail(`The SDK bundle must hold only src/sdk, but has ${outside}`);
}

async function buildCli() {
  const outfile = join(cliOut, "index.mjs");
  const { metafile } = await build({
    absWorkingDir: root,
    entryPoints: ["src/cli/index.ts"],
    outfile,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node18",
    metafile: true,
    logLevel: "warning",
  });
  const foreign = Object.keys(metafile.inputs).filter(
    (input) => !/^src\/(?:sdk\/|cli\/|version\.ts$)/.test(input),
  );
  if (foreign.length > 0) fail(`The CLI bundle must hold only the SDK and CLI, but has ${foreign}`);
  await chmod(outfile, 0o755);
}

async function buildDeclarations() {
  await mkdir(join(root, "dist"), { recursive: true });
  const work = await mkdtemp(join(root, "dist", ".types-"));
  try {
    const expandFile = join(work, "expand.ts");
    await writeFile(
      expandFile,
      expandSource(await readFile(join(root, "src/sdk/types.ts"), "utf8"), work),
    );
    const config = join(work, "tsconfig.json");
    await writeFile(
      config,
      JSON.stringify({
        extends: relative(work, join(root, "tsconfig.build.json")),
        compilerOptions: { rootDir: root, outDir: join(work, "out") },
        include: [join(root, "src/sdk"), join(root, "worker-configuration.d.ts"), expandFile],
      }),
    );
    execFileSync(join(root, "node_modules", ".bin", "tsc"), ["-p", config], {
      cwd: root,
      stdio: "inherit",
    });
    const emitted = join(work, "out", "src", "sdk");
    for (const file of await declarationFiles(emitted)) {
      const name = relative(emitted, file);
      if (name === "types.d.ts") continue;
      await emit(join(sdkOut, name), await readFile(file, "utf8"));
    }
    const expanded = await readFile(join(work, "out", relative(root, work), "expand.d.ts"), "utf8");
    await emit(join(sdkOut, "types.d.ts"), typesDeclaration(expanded));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * A module that gives each exported type of types.ts an inferred, expanded twin: tsc prints the
 * instantiated mapped type structurally, where it would keep a named alias as a reference.
 */
function expandSource(types, work) {
  const documented = [...types.matchAll(/(\/\*\*(?:(?!\*\/)[\s\S])*\*\/)\s*export type (\w+)\b/g)];
  const exported = types.match(/^export type \w+/gm) ?? [];
  if (documented.length !== exported.length) {
    fail("Every type exported from src/sdk/types.ts needs a JSDoc comment");
  }
  const source = relative(work, join(root, "src/sdk/types")).split("\\").join("/");
  return [
    `import type * as Source from "${source.startsWith(".") ? source : `./${source}`}";`,
    "type Expand<V> = V extends (...args: never[]) => unknown ? V",
    "  : V extends readonly (infer I)[] ? Expand<I>[]",
    "  : V extends object ? { [K in keyof V]: Expand<V[K]> } & {} : V;",
    "declare function expand<V>(): V extends object ? { [K in keyof V]: Expand<V[K]> } : V;",
    ...documented.map(
      ([, doc, name]) => `${doc}\nexport const ${name} = expand<Source.${name}>();`,
    ),
  ].join("\n");
}

function typesDeclaration(expanded) {
  const names = new Set([...expanded.matchAll(/^export declare const (\w+):/gm)].map((m) => m[1]));
  const types = expanded
    .replace(/^export declare const (\w+): /gm, "export type $1 = ")
    // A union is printed by its alias when expanding leaves it as it was (ProblemCode): point
    // such references at the SDK's own expanded copy of the same type.
    .replace(/import\("[^"]+"\)\.(\w+)/g, (reference, name) =>
      names.has(name) ? name : reference,
    );
  if (/^import\b/m.test(types) || /declare const/.test(types)) {
    fail("The expanded types still import or declare values");
  }
  return `/** Request and response types of the Switchboard API (generated from its schemas). */\n${types}`;
}

/** Writes a declaration file, giving relative specifiers the `.js` that Node resolution needs. */
async function emit(file, text) {
  const rewritten = text.replace(
    /(from\s+|import\()(["'])(\.{1,2}\/[^"']+?)(?<!\.js)\2/g,
    (_, prefix, quote, specifier) => `${prefix}${quote}${specifier}.js${quote}`,
  );
  const escapes = rewritten.match(
    /(?:from\s+|import\()["'](?:\.\.\/\.\.|zod|@hono\/zod-openapi|drizzle)[^"']*["']/g,
  );
  if (escapes) fail(`${relative(root, file)} reaches outside the SDK: ${escapes.join(", ")}`);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, rewritten);
}

async function declarationFiles(dir) {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith(".d.ts"))
    .map((entry) => join(entry.parentPath, entry.name));
}

function fail(message) {
  throw new Error(`build: ${message}`);
}
