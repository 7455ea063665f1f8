import { lexicalError } from "./syntax-error";
import type { Punctuation, Token } from "./tokens";

const WHITESPACE = /\s+/y;
const NUMBER = /[0-9]+(?:\.[0-9]+)?(?![0-9.])/y;
const SYMBOL = /[a-zA-Z$_][.a-zA-Z0-9$_]*/y;
const SPACE_CHAR = /\s/;

/**
 * Keywords in filtrex's rule order. Each must be followed by one character outside `\w`, and
 * that character is part of the token, as in filtrex: `not(a)` lexes as `not` then `a)`.
 */
const KEYWORDS = ["and", "or", "not", "in", "of", "if", "then", "else", "mod"] as const;

const SINGLE: Readonly<Record<string, Punctuation>> = {
  "*": "*",
  "/": "/",
  "-": "-",
  "+": "+",
  "^": "^",
  "(": "(",
  ")": ")",
  ",": ",",
  "%": "%",
  "?": "?",
  ":": ":",
};

const PAIRED: Readonly<Record<string, Punctuation>> = {
  "==": "==",
  "!=": "!=",
  "~=": "~=",
  ">=": ">=",
  "<=": "<=",
};

const HINTS: Readonly<Record<string, string>> = {
  "=": "; use == to compare",
  "!": "; use not, or != to compare",
  "&": "; use and",
  "|": "; use or",
  "[": "; lists are written (a, b, c)",
};

function isWordChar(code: number): boolean {
  return (
    (code >= 48 && code <= 57) ||
    (code >= 65 && code <= 90) ||
    (code >= 97 && code <= 122) ||
    code === 95
  );
}

function keywordEnd(source: string, at: number, word: string): number {
  const after = at + word.length;
  if (!source.startsWith(word, at) || after >= source.length) return -1;
  return isWordChar(source.charCodeAt(after)) ? -1 : after + 1;
}

/** `not\s+in[^\w]`, which filtrex tries before the single keywords. */
function notInEnd(source: string, at: number): number {
  if (!source.startsWith("not", at)) return -1;
  let index = at + 3;
  while (index < source.length && SPACE_CHAR.test(source.charAt(index))) index++;
  if (index === at + 3) return -1;
  return keywordEnd(source, index, "in");
}

/** Scans a quoted literal; only `\\` and an escaped quote are escapes, as in filtrex. */
function scanQuoted(source: string, start: number): { end: number; value: string } | null {
  const quote = source.charAt(start);
  let value = "";
  let index = start + 1;
  while (index < source.length) {
    const char = source.charAt(index);
    if (char === quote) return { end: index + 1, value };
    if (char === "\\") {
      const escaped = source.charAt(index + 1);
      if (escaped !== quote && escaped !== "\\") return null;
      value += escaped;
      index += 2;
    } else {
      value += char;
      index += 1;
    }
  }
  return null;
}

/**
 * Reads a numeral as filtrex's generated JavaScript reads it: sloppy-mode source text, so `010`
 * is octal 8 and `08` is decimal 8.
 */
function numberValue(text: string): { value: number; octalFraction: boolean } {
  const legacyOctal = /^0[0-7]+/.exec(text);
  if (legacyOctal && !/^0[0-7]*[89]/.test(text)) {
    const octalFraction = text.length > legacyOctal[0].length;
    return { value: octalFraction ? Number.NaN : Number.parseInt(text, 8), octalFraction };
  }
  return { value: Number(text), octalFraction: false };
}

function unrecognized(source: string, at: number): string {
  const char = source.charAt(at);
  if (char === '"') return 'Unterminated string, or an escape other than \\" and \\\\';
  if (char === "'") return "Unterminated quoted name, or an escape other than \\' and \\\\";
  if (/[0-9]/.test(char)) return "Malformed number";
  return `Unrecognized character '${char}'${HINTS[char] ?? ""}`;
}

/** Where lexing is in a source; create with `createLexer`, advance with `nextToken`. */
export interface Lexer {
  readonly source: string;
  offset: number;
}

/** A lexer at the start of `source`. */
export function createLexer(source: string): Lexer {
  return { source, offset: 0 };
}

function sticky(lexer: Lexer, pattern: RegExp): string | null {
  pattern.lastIndex = lexer.offset;
  return pattern.exec(lexer.source)?.[0] ?? null;
}

function punctuation(lexer: Lexer, type: Punctuation, width: number): Token {
  const start = lexer.offset;
  lexer.offset += width;
  return { type, start, end: lexer.offset };
}

/**
 * The next token, by filtrex's lexical rules: the first matching rule wins, whitespace is
 * skipped, and the last token is `EndOfExpression`. Tokens are read one at a time so that, as
 * in filtrex, a lexical error after a parse error is never reported. Throws a FilterSyntaxError
 * for text no rule matches.
 */
export function nextToken(lexer: Lexer): Token {
  const { source } = lexer;
  for (;;) {
    const start = lexer.offset;
    if (start >= source.length) return { type: "EndOfExpression", start, end: start };
    const char = source.charAt(start);
    const pair = PAIRED[source.slice(start, start + 2)];
    if (pair !== undefined) return punctuation(lexer, pair, 2);
    const single = SINGLE[char];
    if (single !== undefined) return punctuation(lexer, single, 1);
    if (char === "<" || char === ">") return punctuation(lexer, char, 1);
    const notIn = notInEnd(source, start);
    if (notIn !== -1) return punctuation(lexer, "notIn", notIn - start);
    for (const word of KEYWORDS) {
      const end = keywordEnd(source, start, word);
      if (end !== -1) return punctuation(lexer, word, end - start);
    }
    const space = sticky(lexer, WHITESPACE);
    if (space !== null) {
      lexer.offset += space.length;
      continue;
    }
    const numeral = sticky(lexer, NUMBER);
    if (numeral !== null) {
      lexer.offset += numeral.length;
      return { type: "Number", start, end: lexer.offset, ...numberValue(numeral) };
    }
    const name = sticky(lexer, SYMBOL);
    if (name !== null) {
      lexer.offset += name.length;
      return { type: "Symbol", start, end: lexer.offset, name, quoted: false };
    }
    const quoted = char === "'" || char === '"' ? scanQuoted(source, start) : null;
    if (quoted !== null) {
      lexer.offset = quoted.end;
      return char === "'"
        ? { type: "Symbol", start, end: lexer.offset, name: quoted.value, quoted: true }
        : { type: "String", start, end: lexer.offset, value: quoted.value };
    }
    throw lexicalError(source, start, unrecognized(source, start));
  }
}
