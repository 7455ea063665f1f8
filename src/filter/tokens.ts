/** Punctuation and keyword tokens, named as filtrex's grammar names its terminals. */
export type Punctuation =
  | "EndOfExpression"
  | "-"
  | "+"
  | "*"
  | "/"
  | "^"
  | "mod"
  | "and"
  | "or"
  | "not"
  | "if"
  | "then"
  | "else"
  | "in"
  | "notIn"
  | "("
  | ")"
  | ","
  | "of"
  | "%"
  | "?"
  | ":"
  | "=="
  | "!="
  | "~="
  | "<"
  | "<="
  | ">="
  | ">";

/** One token; `start`/`end` are offsets into the source, `end` exclusive. */
export type Token =
  /** `octalFraction` marks `010.5`, which filtrex accepts in the grammar but cannot compile. */
  | { type: "Number"; start: number; end: number; value: number; octalFraction: boolean }
  | { type: "String"; start: number; end: number; value: string }
  | { type: "Symbol"; start: number; end: number; name: string; quoted: boolean }
  | { type: Punctuation; start: number; end: number };

/** Every token type, for error messages. */
export type TokenType = Token["type"];
