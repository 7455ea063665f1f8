/**
 * The deployable bundle, as `wrangler deploy` would upload it. Workers refuse code generation from
 * strings in production, but vitest's workerd pool allows it, so only the built output can show
 * that nothing in the Worker (or its dependencies) relies on it.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runWrangler } from "./node/wrangler-cli";

/**
 * Code generation from strings as it appears in emitted JS: `new Function(…)`, `Function("…")`,
 * direct and indirect `eval`. Methods that happen to be named `eval` (`script.eval(…)`) and
 * identifiers that merely contain the words are not matches.
 */
const codeFromStrings = new RegExp(
  [
    String.raw`\bnew\s+Function\s*\(`,
    String.raw`(?<![\w$.])Function\s*\(\s*["'\x60]`,
    String.raw`(?<![\w$.])eval\s*\(`,
    String.raw`\(\s*0\s*,\s*eval\s*\)`,
    String.raw`\b(?:globalThis|self|window)\.eval\s*\(`,
  ].join("|"),
  "g",
);

interface Metafile {
  inputs: Record<string, unknown>;
}

let outdir: string;
let scripts: { file: string; source: string }[];
let metafile: Metafile;

beforeAll(async () => {
  outdir = await mkdtemp(join(tmpdir(), "switchboard-bundle-"));
  // --dry-run builds and validates without an account or network; the metafile lists every input.
  await runWrangler(
    ["deploy", "--dry-run", "--outdir", outdir, "--metafile", join(outdir, "meta.json")],
    "wrangler.toml",
  );
  const files = await readdir(outdir, { recursive: true });
  scripts = await Promise.all(
    files
      .filter((file) => /\.(?:m|c)?js$/.test(file))
      .map(async (file) => ({ file, source: await readFile(join(outdir, file), "utf8") })),
  );
  metafile = JSON.parse(await readFile(join(outdir, "meta.json"), "utf8")) as Metafile;
  const bytes = scripts.reduce((sum, { source }) => sum + Buffer.byteLength(source), 0);
  const gzipped = scripts.reduce((sum, { source }) => sum + gzipSync(source).byteLength, 0);
  console.log(
    `bundle: ${scripts.map(({ file }) => file).join(", ")}: ${kib(bytes)} (${kib(gzipped)} gzip)`,
  );
});

afterAll(async () => {
  if (outdir) await rm(outdir, { recursive: true, force: true });
});

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

describe("the deployable bundle", () => {
  it("emits the Worker's script", () => {
    expect(scripts.length).toBeGreaterThan(0);
  });

  it("contains no new Function( or eval(", () => {
    const found = scripts.flatMap(({ file, source }) =>
      [...source.matchAll(codeFromStrings)].map((match) => {
        const start = Math.max(0, match.index - 60);
        return `${file}: …${source.slice(start, match.index + 60)}…`;
      }),
    );
    expect(found).toEqual([]);
  });

  it("leaves out filtrex, which compiles expressions with new Function", () => {
    const inputs = Object.keys(metafile.inputs);
    expect(inputs.length).toBeGreaterThan(0);
    expect(inputs.filter((input) => /(^|\/)node_modules\/filtrex\//.test(input))).toEqual([]);
    for (const { file, source } of scripts) {
      expect(source, relative(outdir, join(outdir, file))).not.toMatch(/node_modules\/filtrex\//);
    }
  });
});

describe("the code-generation pattern", () => {
  it.each([
    ["new Function(", 'const f = new Function("return 1");', true],
    ["new Function with spacing", "x = new  Function (a, b)", true],
    ["a direct eval", "eval(code)", true],
    ["an indirect eval", "(0, eval)(code)", true],
    ["eval through the global object", "globalThis.eval(code)", true],
    ["Function called with source text", 'Function("return this")()', true],
    ["a reference to Function", "x instanceof Function", false],
    ["eval after an operator", "x=eval(code)", true],
    ["a method named eval", "script.eval(code)", false],
    ["an identifier ending in eval", "safeEval(code)", false],
    ["a $-prefixed identifier", "$eval(code)", false],
    ["a word containing Function", "newFunction(x)", false],
  ])("%s → %s", (_name, source, expected) => {
    expect(new RegExp(codeFromStrings.source).test(source)).toBe(expected);
  });
});
