import type { ChainOperator, Node, RelationalOperator } from "./ast";
import {
  CHAIN_LEVEL,
  CONDITIONAL,
  FOLLOWS_EXPRESSION,
  INFIX,
  isChainOperator,
  isRelational,
  OF,
  OPERAND_START,
  POWER,
  PREFIX,
  RELATION,
} from "./grammar";
import { createLexer, type Lexer, nextToken } from "./lexer";
import { unexpectedToken } from "./parse-errors";
import { type FilterSyntaxError, refusal } from "./syntax-error";
import type { Punctuation, Token, TokenType } from "./tokens";

/** Options of `parse`. */
export interface ParseOptions {
  /** Deepest nesting of parentheses, calls, prefix operators and branches accepted. */
  maxDepth: number;
}

interface Parser {
  lexer: Lexer;
  maxDepth: number;
  lookahead: Token;
  /** End of the last consumed token, for the line number in messages. */
  acceptedEnd: number;
  depth: number;
  /** The last operand was a bare name, which `(` or `of` could have continued. */
  afterBareName: boolean;
  /** The first `010.5`-style numeral, refused once the whole expression has parsed. */
  octalFraction: Token | null;
  /** What may close each open bracketing construct, innermost last. */
  closers: (readonly Punctuation[])[];
}

function advance(parser: Parser): Token {
  const token = parser.lookahead;
  parser.acceptedEnd = token.end;
  parser.afterBareName = false;
  parser.lookahead = nextToken(parser.lexer);
  return token;
}

function unexpected(parser: Parser, expected: readonly TokenType[]): FilterSyntaxError {
  return unexpectedToken(parser.lexer.source, parser.lookahead, parser.acceptedEnd, expected);
}

/*
 * What filtrex's tables expect after an operand. A token that can follow an expression makes
 * them reduce up to the enclosing construct first, so the list is the operators plus that
 * construct's closers; any other token fails at once, in a state that expects everything that
 * can follow an expression (and `(` or `of` after a bare name).
 */
function afterOperand(parser: Parser): FilterSyntaxError {
  if (FOLLOWS_EXPRESSION.includes(parser.lookahead.type)) {
    return unexpected(parser, [...INFIX, ...(parser.closers.at(-1) ?? [])]);
  }
  const bareName: TokenType[] = parser.afterBareName ? ["(", "of"] : [];
  return unexpected(parser, [...FOLLOWS_EXPRESSION, ...bareName]);
}

function expect(parser: Parser, type: Punctuation): void {
  if (parser.lookahead.type !== type) throw afterOperand(parser);
  advance(parser);
}

/** Enters one level of nesting at `opener`; the matching `leave` must follow. */
function enter(parser: Parser, opener: Token, closing?: readonly Punctuation[]): void {
  parser.depth += 1;
  if (parser.depth > parser.maxDepth) {
    const site = {
      source: parser.lexer.source,
      tokenStart: opener.start,
      tokenEnd: opener.end,
      acceptedEnd: parser.acceptedEnd,
    };
    throw refusal(site, `Nested deeper than ${parser.maxDepth} levels`);
  }
  if (closing) parser.closers.push(closing);
}

function leave(parser: Parser, closing?: readonly Punctuation[]): void {
  if (closing) parser.closers.pop();
  parser.depth -= 1;
}

/** An expression up to `closer`, which it consumes; one level deeper than the opener. */
function enclosed(parser: Parser, opener: Token, closer: Punctuation): Node {
  const closing = [closer];
  enter(parser, opener, closing);
  const inner = expression(parser, 0);
  expect(parser, closer);
  leave(parser, closing);
  return inner;
}

/** An operand one level deeper than `opener`, binding tighter than `minLevel`. */
function deeper(parser: Parser, opener: Token, minLevel: number): Node {
  enter(parser, opener);
  const inner = expression(parser, minLevel);
  leave(parser);
  return inner;
}

/**
 * `left operator right`, appended to `left` when it is a run of the same level (a
 * parenthesised run too: folding left to right, `(a + b) + c` is `a + b + c`).
 */
function extendChain(left: Node, operator: ChainOperator, right: Node): Node {
  const { position } = left;
  if (operator === "and" || operator === "or") {
    if (left.kind === "logical" && left.operator === operator) {
      left.operands.push(right);
      return left;
    }
    return { kind: "logical", position, operator, operands: [left, right] };
  }
  if (operator === "in" || operator === "notIn") {
    if (left.kind !== "membership") {
      return { kind: "membership", position, operators: [operator], operands: [left, right] };
    }
    left.operators.push(operator);
    left.operands.push(right);
    return left;
  }
  const first = left.kind === "arithmetic" ? left.operators[0] : undefined;
  if (
    left.kind !== "arithmetic" ||
    first === undefined ||
    CHAIN_LEVEL[first] !== CHAIN_LEVEL[operator]
  ) {
    return { kind: "arithmetic", position, operators: [operator], operands: [left, right] };
  }
  left.operators.push(operator);
  left.operands.push(right);
  return left;
}

function expression(parser: Parser, minLevel: number): Node {
  let left = prefix(parser);
  for (;;) {
    const operator = parser.lookahead;
    const type = operator.type;
    if (isChainOperator(type)) {
      const level = CHAIN_LEVEL[type];
      if (level <= minLevel) return left;
      advance(parser);
      left = extendChain(left, type, expression(parser, level));
    } else if (isRelational(type)) {
      if (RELATION <= minLevel) return left;
      const operators: RelationalOperator[] = [];
      const operands: Node[] = [left];
      for (let link = parser.lookahead.type; isRelational(link); link = parser.lookahead.type) {
        advance(parser);
        operators.push(link);
        operands.push(expression(parser, RELATION));
      }
      left = { kind: "relation", position: left.position, operators, operands };
    } else if (type === "^") {
      if (POWER <= minLevel) return left;
      advance(parser);
      const exponent = deeper(parser, operator, POWER - 1);
      left = { kind: "power", position: left.position, base: left, exponent };
    } else if (type === "?") {
      if (CONDITIONAL <= minLevel) return left;
      advance(parser);
      const consequent = enclosed(parser, operator, ":");
      const alternate = deeper(parser, operator, CONDITIONAL - 1);
      left = { kind: "conditional", position: left.position, test: left, consequent, alternate };
    } else {
      return left;
    }
  }
}

function prefix(parser: Parser): Node {
  const token = parser.lookahead;
  switch (token.type) {
    case "Number":
      advance(parser);
      parser.octalFraction ??= token.octalFraction ? token : null;
      return { kind: "number", position: token.start, value: token.value };
    case "String":
      advance(parser);
      return { kind: "string", position: token.start, value: token.value };
    case "Symbol":
      advance(parser);
      return named(parser, token);
    case "(":
      advance(parser);
      return group(parser, token);
    case "-":
    case "not": {
      advance(parser);
      const operand = deeper(parser, token, PREFIX);
      return { kind: token.type === "-" ? "negate" : "not", position: token.start, operand };
    }
    case "if": {
      advance(parser);
      const test = enclosed(parser, token, "then");
      const consequent = enclosed(parser, token, "else");
      const alternate = deeper(parser, token, CONDITIONAL - 1);
      return { kind: "conditional", position: token.start, test, consequent, alternate };
    }
    default:
      throw unexpected(parser, OPERAND_START);
  }
}

const LIST_CLOSERS: readonly Punctuation[] = [")", ","];

/** A name, a call `name(…)`, or a property `name of …`. */
function named(parser: Parser, token: Extract<Token, { type: "Symbol" }>): Node {
  const { name, quoted, start: position } = token;
  if (parser.lookahead.type === "(") {
    const open = advance(parser);
    enter(parser, open, LIST_CLOSERS);
    const args = callArguments(parser);
    leave(parser, LIST_CLOSERS);
    return { kind: "call", position, name, args };
  }
  if (parser.lookahead.type === "of") {
    const of = advance(parser);
    const object = deeper(parser, of, OF);
    return { kind: "property", position, name, quoted, object };
  }
  parser.afterBareName = true;
  return { kind: "property", position, name, quoted };
}

function callArguments(parser: Parser): Node[] {
  const args: Node[] = [];
  if (parser.lookahead.type === ")") {
    advance(parser);
    return args;
  }
  if (!OPERAND_START.includes(parser.lookahead.type)) {
    throw unexpected(parser, [...OPERAND_START, ")"]);
  }
  args.push(expression(parser, 0));
  while (parser.lookahead.type === ",") {
    advance(parser);
    args.push(expression(parser, 0));
  }
  expect(parser, ")");
  return args;
}

/** `( e )`, or the list `( e, e, … )` of two or more. */
function group(parser: Parser, open: Token): Node {
  enter(parser, open, LIST_CLOSERS);
  const items = [expression(parser, 0)];
  while (parser.lookahead.type === ",") {
    advance(parser);
    items.push(expression(parser, 0));
  }
  expect(parser, ")");
  leave(parser, LIST_CLOSERS);
  const [only] = items;
  return items.length === 1 && only ? only : { kind: "array", position: open.start, items };
}

/**
 * Parses a filtrex expression into a tree. Throws a FilterSyntaxError with the position of the
 * first token that cannot continue the expression, or of the construct that nests too deep.
 * Recursion is bounded by `maxDepth`, so hostile nesting fails cleanly.
 */
export function parse(source: string, options: ParseOptions): Node {
  const lexer = createLexer(source);
  const parser: Parser = {
    lexer,
    maxDepth: options.maxDepth,
    lookahead: nextToken(lexer),
    acceptedEnd: 0,
    depth: 0,
    afterBareName: false,
    octalFraction: null,
    closers: [["EndOfExpression"]],
  };
  const tree = expression(parser, 0);
  expect(parser, "EndOfExpression");
  if (parser.octalFraction) {
    const { start, end } = parser.octalFraction;
    const site = { source, tokenStart: start, tokenEnd: end, acceptedEnd: parser.acceptedEnd };
    throw refusal(site, "An octal number (leading zero) cannot have a fraction");
  }
  return tree;
}
