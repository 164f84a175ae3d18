import type { Delivery, DeliveryChange } from '../../core/deliveries.ts';
import type { AcceptOutcome, DeliveryHandler, DeliveryLogStore, DeliveryQueue, RequeueOutcome } from '../../core/ports.ts';

const TAKEN: Promise<boolean> = Promise.resolve(true);
const QUEUED: AcceptOutcome = Object.freeze({ kind: 'queued' });
const LOG_FULL: AcceptOutcome = Object.freeze({ kind: 'log_full' });
const DONE: Promise<void> = Promise.resolve();
const GONE: RequeueOutcome = Object.freeze({ kind: 'gone' });

/**
 * The delivery queue of one process: a delivery is handed to the dispatcher's lanes as it is
 * queued, in the same step, so memory keeps exactly the in-process behaviour it always had (the
 * lanes and the worker pool are the queue; the dispatcher bounds them before logging a delivery).
 * Nothing is held here, so nothing is acknowledged, and no promise is made per delivery.
 * `accept` (log once and queue) needs the delivery log; the dispatcher uses it only with a shared
 * queue, so memory's path stays the log's insert and `enqueue`.
 */
export class MemoryDeliveryQueue implements DeliveryQueue {
  readonly shared = false;
  readonly #log: DeliveryLogStore | undefined;
  #handler: DeliveryHandler | undefined;

  constructor(log?: DeliveryLogStore) {
    this.#log = log;
  }

  start(handler: DeliveryHandler): void {
    if (this.#handler !== undefined) throw new Error('the delivery queue is already started');
    this.#handler = handler;
  }

  enqueue(delivery: Delivery, origin: string): Promise<boolean> {
    if (this.#handler === undefined) throw new Error('the delivery queue is not started');
    this.#handler(delivery, origin, null);
    return TAKEN;
  }

  /** One process: nothing runs between the log's insert and the hand-over that could be lost apart from the process. */
  async accept(delivery: Delivery, origin: string): Promise<AcceptOutcome> {
    if (this.#log === undefined) throw new Error('this delivery queue was made without the delivery log');
    const inserted = await this.#log.insertOnce(delivery);
    if (!inserted.ok) return inserted.reason === 'exists' ? { kind: 'exists', delivery: inserted.existing } : LOG_FULL;
    await this.enqueue(delivery, origin);
    return QUEUED;
  }

  /** One process: the log's conditional update, then the hand-over, with nothing between them to lose. */
  async requeue(read: Delivery, change: DeliveryChange): Promise<RequeueOutcome> {
    if (this.#log === undefined) throw new Error('this delivery queue was made without the delivery log');
    const updated = await this.#log.updateIf(read.id, { statuses: [read.status], attempts: read.attempts.length }, change);
    if (updated === undefined) return GONE;
    if (!updated.changed) return { kind: 'moved', delivery: updated.delivery };
    await this.enqueue(updated.delivery, new URL(updated.delivery.url).origin);
    return { kind: 'queued', delivery: updated.delivery };
  }

  begin(): Promise<boolean> {
    return Promise.resolve(true);
  }

  ack(): Promise<void> {
    return DONE;
  }

  release(): void {}

  forget(): void {}

  stop(): Promise<void> {
    return DONE;
  }
}
