/**
 * Thrown by `compileExpression` for a malformed expression, and reported by `compileFilter` as a
 * problem. Like the parse errors filtrex throws, it is a plain `Error` by name; `position` says
 * where, as a 0-based offset into the source, and `reason` says what, on one line. The `message`
 * follows filtrex's layout: the line, the text around the position with a caret under it, and
 * what was expected.
 */
export class FilterSyntaxError extends Error {
  readonly position: number;
  readonly reason: string;

  constructor(message: string, position: number, reason: string) {
    super(message);
    this.position = position;
    this.reason = reason;
  }
}

const CONTEXT = 20;

/** Counts line breaks the way filtrex's lexer does (`\r\n`, `\r` and `\n` each count once). */
function lineBreaks(text: string): number {
  return text.match(/\r\n?|\n/g)?.length ?? 0;
}

/** The excerpt with a caret under `start`, laid out as filtrex's lexer lays it out. */
function excerpt(source: string, start: number, end: number): string {
  const past = source.slice(0, start);
  const pre = (past.length > CONTEXT ? "..." : "") + past.slice(-CONTEXT).replace(/\n/g, "");
  let next = source.slice(start, end);
  if (next.length < CONTEXT) next += source.slice(end, end + CONTEXT - next.length);
  const upcoming = (next.slice(0, CONTEXT) + (next.length > CONTEXT ? "..." : "")).replace(
    /\n/g,
    "",
  );
  return `${pre}${upcoming}\n${"-".repeat(pre.length)}^`;
}

/** A lexical error at `position`: no token starts there. */
export function lexicalError(source: string, position: number, reason: string): FilterSyntaxError {
  const line = lineBreaks(source.slice(0, position)) + 1;
  const message = `Lexical error on line ${line}. Unrecognized text.\n${excerpt(source, position, position)}`;
  return new FilterSyntaxError(message, position, reason);
}

/** Where a parse error happened: the offending token and the end of the last accepted one. */
export interface ParseErrorSite {
  source: string;
  tokenStart: number;
  tokenEnd: number;
  acceptedEnd: number;
}

/** A parse error at a token, worded as filtrex words it: what was expected and what came. */
export function parseError(
  site: ParseErrorSite,
  expected: readonly string[],
  got: string,
  reason: string,
): FilterSyntaxError {
  const line = lineBreaks(site.source.slice(0, site.acceptedEnd)) + 1;
  const where = excerpt(site.source, site.tokenStart, site.tokenEnd);
  const wanted = expected.map((name) => `'${name}'`).join(", ");
  const message = `Parse error on line ${line}:\n${where}\nExpecting ${wanted}, got '${got}'`;
  return new FilterSyntaxError(message, site.tokenStart, reason);
}

/** A refusal that is not about the grammar (too deep, unknown function, unsafe pattern). */
export function refusal(site: ParseErrorSite, reason: string): FilterSyntaxError {
  const line = lineBreaks(site.source.slice(0, site.tokenStart)) + 1;
  const where = excerpt(site.source, site.tokenStart, site.tokenEnd);
  return new FilterSyntaxError(
    `Parse error on line ${line}:\n${where}\n${reason}`,
    site.tokenStart,
    reason,
  );
}

/** A refusal at `position` (an unknown function, a refused pattern), found after parsing. */
export function refusalAt(source: string, position: number, reason: string): FilterSyntaxError {
  return refusal(
    { source, tokenStart: position, tokenEnd: position, acceptedEnd: position },
    reason,
  );
}
