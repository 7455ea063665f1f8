import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";

const folder = join(import.meta.dirname, "../../src/filter");

it.each(readdirSync(folder).filter((file) => file.endsWith(".ts")))(
  "%s generates no code from strings",
  (file) => {
    const source = readFileSync(join(folder, file), "utf8");
    expect(source).not.toMatch(/\bnew\s+Function\b|(?<![\w.])Function\s*\(|\beval\s*\(/);
  },
);
