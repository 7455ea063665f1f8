/**
 * The Worker's queue entry point: each batch goes to the consumer of the queue it came from,
 * recognized by the name's suffix so that renamed queues (`acme-fanout`) keep working.
 */
import { handleDeadLetterBatch } from "../deadletters/consumer";
import { handleDeliveryBatch } from "../delivery/consumer";
import { handleFanoutBatch } from "../fanout/consumer";
import { logError } from "../log";

/** Routes a batch; never throws, since the runtime would then redeliver acked messages. */
export async function handleQueue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  try {
    if (batch.queue.endsWith("-fanout")) return await handleFanoutBatch(batch, env);
    if (batch.queue.endsWith("-deliveries")) return await handleDeliveryBatch(batch, env);
    if (batch.queue.endsWith("-dead-letters")) return await handleDeadLetterBatch(batch, env);
    logError("queue.unknown", { queue: batch.queue });
    batch.retryAll({ delaySeconds: 60 });
  } catch (error) {
    logError("queue.unhandled", { queue: batch.queue, error: String(error) });
    batch.retryAll({ delaySeconds: 30 });
  }
}
