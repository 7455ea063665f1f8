/**
 * The errors a compiled expression returns, as filtrex defines them. Like filtrex, the classes
 * keep their parent's `name` (an UnknownPropertyError is named "ReferenceError"), so code that
 * switches on `name` or `instanceof` behaves the same with either library.
 *
 * Unlike filtrex's, the evaluation errors carry no stack trace. They describe the data (a missing field, a wrong
 * type), not a fault in the program, and a trace through the compiled closures says nothing a
 * user can act on; capturing one costs several microseconds, many times the evaluation itself.
 */

/** Turns stack capture off for the `super` call; returns the limit to restore after it. */
function suspendStackCapture(): number {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  return limit;
}

/** Evaluation error: the expression calls a function that is neither standard nor supplied. */
export class UnknownFunctionError extends ReferenceError {
  readonly I18N_STRING = "UNKNOWN_FUNCTION";
  readonly functionName: string;

  constructor(functionName: string) {
    const limit = suspendStackCapture();
    super(`Unknown function: ${functionName}()`);
    Error.stackTraceLimit = limit;
    this.functionName = functionName;
  }
}

/** Evaluation error: the property is not an own property of the object, nor a constant. */
export class UnknownPropertyError extends ReferenceError {
  readonly I18N_STRING = "UNKNOWN_PROPERTY";
  readonly propertyName: string;

  constructor(propertyName: string) {
    const limit = suspendStackCapture();
    super(`Property “${propertyName}” does not exist.`);
    Error.stackTraceLimit = limit;
    this.propertyName = propertyName;
  }
}

/** Compile error: `compileExpression` was given an option it does not know. */
export class UnknownOptionError extends TypeError {
  readonly I18N_STRING = "UNKNOWN_OPTION";
  readonly keyName: string;

  constructor(keyName: string) {
    super(`Unknown option: ${keyName}`);
    this.keyName = keyName;
  }
}

/**
 * Evaluation error: an operator or function got a value of the wrong type. The types are named
 * as filtrex names them: "number", "text", "list", "true", "false", "undefined"…
 */
export class UnexpectedTypeError extends TypeError {
  readonly I18N_STRING = "UNEXPECTED_TYPE";
  readonly expectedType: string;
  /** Spelled as in filtrex. */
  readonly recievedType: string;

  constructor(expectedType: string, receivedType: string) {
    const limit = suspendStackCapture();
    super(`Expected a ${expectedType}, but got a ${receivedType} instead.`);
    Error.stackTraceLimit = limit;
    this.expectedType = expectedType;
    this.recievedType = receivedType;
  }
}

/** An error that should not happen; filtrex exports it, so this module does too. */
export class InternalError extends Error {
  readonly I18N_STRING = "INTERNAL";
}

function shorten(pattern: string): string {
  return pattern.length > 64 ? `${pattern.slice(0, 64)}…` : pattern;
}

/**
 * Evaluation error from the broker's `~=`: the pattern was refused because it can backtrack
 * catastrophically. A SyntaxError, like the error an invalid pattern gives.
 */
export class UnsafeRegexError extends SyntaxError {
  readonly I18N_STRING = "UNSAFE_REGEX";
  readonly pattern: string;
  /** 0-based offset of the offending construct inside the pattern. */
  readonly patternIndex: number;

  constructor(pattern: string, reason: string, patternIndex: number) {
    const limit = suspendStackCapture();
    super(`Refused regular expression /${shorten(pattern)}/: ${reason} at offset ${patternIndex}`);
    Error.stackTraceLimit = limit;
    this.pattern = pattern;
    this.patternIndex = patternIndex;
  }
}

/**
 * Evaluation error from the broker's `+`: the text it would build is longer than the broker lets a
 * filter build. Repeated concatenation of a large field otherwise grows by the field's size with
 * each term, past the Worker's memory once something reads the result whole.
 */
export class TextTooLongError extends RangeError {
  readonly I18N_STRING = "TEXT_TOO_LONG";
  readonly length: number;

  constructor(length: number, limit: number) {
    const stackLimit = suspendStackCapture();
    super(`The text would be ${length} characters long; a filter builds at most ${limit}`);
    Error.stackTraceLimit = stackLimit;
    this.length = length;
  }
}
