import { INFIX, OPERAND_START, TERMINAL_ORDER } from "./grammar";
import { type FilterSyntaxError, parseError } from "./syntax-error";
import type { Token, TokenType } from "./tokens";

function describe(source: string, token: Token): string {
  if (token.type === "EndOfExpression") return "end of input";
  if (token.type === "notIn") return "'not in'";
  if (token.type === "Number" || token.type === "String" || token.type === "Symbol") {
    const text = source.slice(token.start, token.end);
    return `'${text.length > 24 ? `${text.slice(0, 24)}…` : text}'`;
  }
  return `'${token.type}'`;
}

function summarize(expected: readonly TokenType[]): string {
  const closers = expected.filter((type) => !INFIX.includes(type) && !OPERAND_START.includes(type));
  const wanted = [
    ...(expected.includes("Number") ? ["a value"] : []),
    ...(expected.includes("+") ? ["an operator"] : []),
    ...closers.map((type) =>
      type === "EndOfExpression" ? "the end of the expression" : `'${type}'`,
    ),
  ];
  return wanted.length > 1
    ? `${wanted.slice(0, -1).join(", ")} or ${wanted.at(-1)}`
    : (wanted[0] ?? "");
}

/**
 * The error for an unexpected token: filtrex's message (with the expected terminals in its
 * order) and a one-line reason for API consumers.
 */
export function unexpectedToken(
  source: string,
  token: Token,
  acceptedEnd: number,
  expected: readonly TokenType[],
): FilterSyntaxError {
  const ordered = TERMINAL_ORDER.filter((type) => expected.includes(type));
  const reason = `Unexpected ${describe(source, token)}; expected ${summarize(ordered)}`;
  const site = { source, tokenStart: token.start, tokenEnd: token.end, acceptedEnd };
  return parseError(site, ordered, token.type, reason);
}
