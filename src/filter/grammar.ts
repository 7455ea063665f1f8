import type { ChainOperator, RelationalOperator } from "./ast";
import type { TokenType } from "./tokens";

/*
 * filtrex's operator table, lowest precedence first: if/then/else and ?:, or, and, in/not in,
 * relations, + -, * / mod %, not and unary minus, ^, of. The parser climbs these levels; each
 * binds as filtrex's LALR tables do, including chained relations and `not` binding tighter
 * than `==` (`not a == b` is `(not a) == b`).
 */

/** Level of `if … then … else …` and `… ? … : …` (right-associative). */
export const CONDITIONAL = 1;
/** Level of the relational operators, which chain: `a < b <= c`. */
export const RELATION = 6;
/** Level of `not` and unary minus. */
export const PREFIX = 10;
/** Level of `^` (right-associative). */
export const POWER = 11;
/** Level of `of`, the tightest. */
export const OF = 12;

/** Levels of the left-associative operators. */
export const CHAIN_LEVEL: Readonly<Record<ChainOperator, number>> = {
  or: 2,
  and: 3,
  in: 4,
  notIn: 4,
  "+": 8,
  "-": 8,
  "*": 9,
  "/": 9,
  mod: 9,
  "%": 9,
};

const RELATIONAL = new Set<TokenType>(["==", "!=", "~=", "<", "<=", ">=", ">"]);

/** Tokens that can start an operand. */
export const OPERAND_START: readonly TokenType[] = [
  "-",
  "not",
  "if",
  "(",
  "Number",
  "Symbol",
  "String",
];

/** Tokens that can follow an operand inside an expression. */
export const INFIX: readonly TokenType[] = [
  ...(Object.keys(CHAIN_LEVEL) as ChainOperator[]),
  ...RELATIONAL,
  "^",
  "?",
];

/** Tokens that can follow a whole expression somewhere in the grammar. */
export const FOLLOWS_EXPRESSION: readonly TokenType[] = [
  ...INFIX,
  "EndOfExpression",
  "then",
  "else",
  ")",
  ",",
  ":",
];

/** filtrex's terminal numbering, which orders the "Expecting" list of its messages. */
export const TERMINAL_ORDER: readonly TokenType[] = [
  ...["EndOfExpression", "-", "+", "*", "/", "^", "mod", "and", "or", "not", "if", "then"],
  ...["else", "in", "notIn", "(", ")", ",", "Number", "Symbol", "String", "of", "%", "?", ":"],
  ...["==", "!=", "~=", "<", "<=", ">=", ">"],
] as TokenType[];

/** True for the left-associative operators. */
export function isChainOperator(type: TokenType): type is ChainOperator {
  return Object.hasOwn(CHAIN_LEVEL, type);
}

/** True for the relational operators. */
export function isRelational(type: TokenType): type is RelationalOperator {
  return RELATIONAL.has(type);
}
