/** How commands print: aligned tables and fields for people, JSON with `--json` for scripts. */

export interface Output {
  /** Whether `--json` was given. */
  json: boolean;
  /** A line (or lines) on stdout. */
  line(text: string): void;
  /** A value as indented JSON on stdout. */
  printJson(value: unknown): void;
  /** A note on stderr, kept out of stdout so pipes see only the result. */
  note(text: string): void;
}

/** An Output over two writers. */
export function createOutput(
  json: boolean,
  stdout: (text: string) => void,
  stderr: (text: string) => void,
): Output {
  return {
    json,
    line: (text) => stdout(`${text}\n`),
    printJson: (value) => stdout(`${JSON.stringify(value, null, 2)}\n`),
    note: (text) => stderr(`${text}\n`),
  };
}

const MAX_CELL = 60;

/**
 * Rows under a header, each column as wide as its widest cell (long cells are cut to keep rows
 * on one line; `--json` has them whole).
 *
 * @example table(["NAME", "SUBSCRIBERS"], [["orders", "2"]]);
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cells = [header, ...rows].map((row) => row.map(cell));
  const widths = header.map((_, column) =>
    Math.max(...cells.map((row) => (row[column] ?? "").length)),
  );
  return cells
    .map((row) =>
      row
        .map((value, column) => value.padEnd(widths[column] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** `label: value` lines with the values aligned. */
export function fields(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([label]) => label.length)) + 1;
  return pairs.map(([label, value]) => `${`${label}:`.padEnd(width)} ${value}`).join("\n");
}

/** A value for a table or field: empty and null show as `-`, objects as compact JSON. */
export function show(value: unknown): string {
  if (value === null || value === undefined || value === "") return "-";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

function cell(value: string): string {
  const flat = value.replace(/\s+/g, " ");
  return flat.length > MAX_CELL ? `${flat.slice(0, MAX_CELL - 1)}…` : flat;
}
