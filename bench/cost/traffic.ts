/**
 * What the bench sends the broker through its API: a workload's topic and subscribers (set-up, not
 * counted), and its publish requests, each with the body and keys the workload says.
 */
import { closedLoop } from "../lib/http";
import type { CostWorker } from "./local";
import { type Mode, messageBody, type Workload } from "./workloads";

const CREATE_CONCURRENCY = 16;

/**
 * Whether the broker takes the lean mode's topic setting: a topic created with it answers 201,
 * one the broker does not know answers 400.
 */
export async function acceptsMode(worker: CostWorker, mode: Mode): Promise<boolean> {
  const result = await worker.http.send("POST", "/v1/topics", {
    token: worker.adminToken,
    json: { name: `cost-probe-${mode.name}`, ...mode.topic },
  });
  if (result.status === 201) return true;
  if (result.status === 400) return false;
  throw new Error(`POST /v1/topics (${mode.name}): ${result.status} ${result.body}`);
}

export async function setUp(
  worker: CostWorker,
  sinkUrl: string,
  workload: Workload,
  mode: Mode,
  topic: string,
): Promise<void> {
  const { http, adminToken } = worker;
  await http.expect(201, "POST", "/v1/topics", {
    token: adminToken,
    json: { name: topic, ...mode.topic },
  });
  // One subscriber listens on the channel itself; more get a path each, so the sink counts each
  // subscriber's delivery of a message apart.
  const urlOf = (i: number) =>
    workload.subscribers === 1 ? `${sinkUrl}/${topic}` : `${sinkUrl}/${topic}/${i}`;
  await closedLoop(workload.subscribers, CREATE_CONCURRENCY, async (i) => {
    const result = await http.expect(201, "POST", `/v1/topics/${topic}/subscribers`, {
      token: adminToken,
      json: {
        url: urlOf(i),
        ...(workload.filter === undefined ? {} : { filter: workload.filter }),
      },
    });
    return result.ms;
  });
}

export async function publish(
  worker: CostWorker,
  workload: Workload,
  topic: string,
  request: number,
): Promise<void> {
  const { http, publishToken: token } = worker;
  const key = (n: number) => `${topic}-${n}`;
  if (workload.messagesPerPublish === 1) {
    await http.expect(202, "POST", `/v1/topics/${topic}/messages`, {
      token,
      json: { body: messageBody(request) },
      ...(workload.keys === "none" ? {} : { headers: { "idempotency-key": key(request) } }),
    });
    return;
  }
  const first = request * workload.messagesPerPublish;
  const envelopes = Array.from({ length: workload.messagesPerPublish }, (_, i) => ({
    body: messageBody(first + i),
    ...(workload.keys === "envelope" ? { idempotencyKey: key(first + i) } : {}),
  }));
  await http.expect(202, "POST", `/v1/topics/${topic}/messages/batch`, {
    token,
    json: { messages: envelopes },
  });
}
