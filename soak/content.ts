/**
 * The oracle for one request: what a subscriber must receive for a message, per the contract's
 * "What a subscriber receives", compared with what arrived on the wire.
 */
import type { ReceivedAttempt } from "./endpoint";
import type { PlannedMessage, SubscriberPlan } from "./plan";

/** Every difference between the request and what the contract says it must be; empty if none. */
export function contentProblems(
  attempt: ReceivedAttempt,
  id: string,
  message: PlannedMessage,
  subscriber: SubscriberPlan,
): string[] {
  const problems: string[] = [];
  const expectedMethod = message.envelope.method ?? "POST";
  if (attempt.method !== expectedMethod) {
    problems.push(`method ${attempt.method}, expected ${expectedMethod}`);
  }
  const url = new URL(attempt.target, "http://subscriber.invalid");
  const segments = url.pathname.split("/").map(safeDecode);
  const expectedSegments = expectedPath(subscriber.path, message.envelope.pathParams);
  if (JSON.stringify(segments) !== JSON.stringify(expectedSegments)) {
    problems.push(`path ${url.pathname}, expected segments ${JSON.stringify(expectedSegments)}`);
  }
  const query = queryProblem(url.searchParams, {
    sub: [subscriber.name],
    ...normalizeQuery(message.envelope.query ?? {}),
  });
  if (query) problems.push(query);
  problems.push(...headerProblems(attempt.headers, id, message, subscriber));
  if (!attempt.body.equals(message.bytes)) {
    problems.push(
      `body of ${attempt.body.length} bytes differs from the ${message.bytes.length} published`,
    );
  }
  return problems;
}

function expectedPath(template: string, params: Record<string, string>): string[] {
  return template.split("/").map((segment) => {
    const name = segment.startsWith(":") ? segment.slice(1) : /^\{(\w+)\}$/.exec(segment)?.[1];
    return name === undefined ? segment : (params[name] ?? `<missing ${name}>`);
  });
}

function normalizeQuery(query: Record<string, string | string[]>): Record<string, string[]> {
  return Object.fromEntries(
    Object.entries(query).map(([name, value]) => [
      name,
      typeof value === "string" ? [value] : value,
    ]),
  );
}

function queryProblem(
  actual: URLSearchParams,
  expected: Record<string, string[]>,
): string | undefined {
  const names = [...new Set(actual.keys())].sort();
  const expectedNames = Object.keys(expected).sort();
  if (JSON.stringify(names) !== JSON.stringify(expectedNames)) {
    return `query names ${JSON.stringify(names)}, expected ${JSON.stringify(expectedNames)}`;
  }
  for (const name of expectedNames) {
    const values = actual.getAll(name);
    if (JSON.stringify(values) !== JSON.stringify(expected[name])) {
      return `query ${name}=${JSON.stringify(values)}, expected ${JSON.stringify(expected[name])}`;
    }
  }
  return undefined;
}

/** Header names the soak's messages and subscribers use: any other one arriving has leaked. */
const OWN_HEADER = /^(?:region|x-.*)$/;

function headerProblems(
  headers: Record<string, string>,
  id: string,
  message: PlannedMessage,
  subscriber: SubscriberPlan,
): string[] {
  const expected: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.envelope.headers ?? {})) {
    expected[name.toLowerCase()] = value;
  }
  expected["x-subscriber"] = subscriber.name;
  expected["content-type"] = message.contentType;
  expected["webhook-id"] = id;
  expected["switchboard-topic"] = message.topic;
  const problems: string[] = [];
  for (const [name, value] of Object.entries(expected)) {
    if (headers[name] !== value) {
      problems.push(
        `header ${name}: ${JSON.stringify(headers[name])}, expected ${JSON.stringify(value)}`,
      );
    }
  }
  for (const name of Object.keys(headers)) {
    if (OWN_HEADER.test(name) && !(name in expected)) problems.push(`unexpected header ${name}`);
  }
  if (!/^[1-9]\d*$/.test(headers["switchboard-attempt"] ?? "")) {
    problems.push(`switchboard-attempt ${JSON.stringify(headers["switchboard-attempt"])}`);
  }
  if (!/^\d+$/.test(headers["webhook-timestamp"] ?? "")) {
    problems.push(`webhook-timestamp ${JSON.stringify(headers["webhook-timestamp"])}`);
  }
  if (!headers["user-agent"]?.startsWith("Switchboard/")) {
    problems.push(`user-agent ${JSON.stringify(headers["user-agent"])}`);
  }
  return problems;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return `<undecodable ${segment}>`;
  }
}
