import type { DeliveryHandler, DeliveryQueue } from '../../src/core/ports.ts';

/** A shared queue that records what it is told about its tickets (as RedisDeliveryQueue is told); `failAck`: its acknowledgements fail. */
export class RecordingQueue implements DeliveryQueue {
  readonly shared = true;
  handler: DeliveryHandler = () => undefined;
  readonly calls: string[] = [];
  failAck = false;
  start(handler: DeliveryHandler): void {
    this.handler = handler;
  }
  enqueue(): Promise<boolean> {
    return Promise.resolve(true);
  }
  accept(): never {
    throw new Error('not used here');
  }
  requeue(): never {
    throw new Error('not used here');
  }
  begin(ticket: string): Promise<boolean> {
    this.calls.push(`begin ${ticket}`);
    return Promise.resolve(true);
  }
  ack(ticket: string): Promise<void> {
    this.calls.push(`ack ${ticket}`);
    return this.failAck ? Promise.reject(new Error('store down')) : Promise.resolve();
  }
  release(ticket: string): void {
    this.calls.push(`release ${ticket}`);
  }
  forget(ticket: string): void {
    this.calls.push(`forget ${ticket}`);
  }
  heldAs(ticket: string) {
    return { stream: 'recorded', group: 'dispatchers', entry: ticket, consumers: ['me', 'me:busy'] };
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
}
