import type { Delivery } from '../../core/deliveries.ts';
import type { DeliveryHandler, DeliveryQueue } from '../../core/ports.ts';

const TAKEN: Promise<boolean> = Promise.resolve(true);
const DONE: Promise<void> = Promise.resolve();

/**
 * The delivery queue of one process: a delivery is handed to the dispatcher's lanes as it is
 * queued, in the same step, so memory keeps exactly the in-process behaviour it always had (the
 * lanes and the worker pool are the queue; the dispatcher bounds them before logging a delivery).
 * Nothing is held here, so nothing is acknowledged, and no promise is made per delivery.
 */
export class MemoryDeliveryQueue implements DeliveryQueue {
  readonly shared = false;
  #handler: DeliveryHandler | undefined;

  start(handler: DeliveryHandler): void {
    if (this.#handler !== undefined) throw new Error('the delivery queue is already started');
    this.#handler = handler;
  }

  enqueue(delivery: Delivery, origin: string): Promise<boolean> {
    if (this.#handler === undefined) throw new Error('the delivery queue is not started');
    this.#handler(delivery, origin, null);
    return TAKEN;
  }

  begin(): void {}

  ack(): Promise<void> {
    return DONE;
  }

  release(): void {}

  stop(): Promise<void> {
    return DONE;
  }
}
