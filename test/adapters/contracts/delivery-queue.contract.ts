import { describe, expect, it } from 'vitest';
import type { Delivery } from '../../../src/core/deliveries.ts';
import type { DeliveryLogStore, DeliveryQueue } from '../../../src/core/ports.ts';
import { eventually } from '../../helpers/receiver.ts';
import { aDelivery, concurrently } from './fixtures.ts';

/** A queue started with a handler that records (and acknowledges) what it is handed, on its delivery log. */
export interface StartedQueue {
  queue: DeliveryQueue;
  log: DeliveryLogStore;
  /** Deliveries handed over so far, in order. */
  handed: Delivery[];
}

export type DeliveryQueueFactory = (options: { maxDeliveries: number }) => Promise<StartedQueue>;

const URL_A = 'https://a.example/hooks';
const ORIGIN_A = 'https://a.example';

/**
 * The DeliveryQueue port's `accept` (src/core/ports.ts): a new delivery logged once per event and
 * URL and queued in one step. A queue hands deliveries over in the order queued, so a marker
 * accepted last and seen handed over shows that nothing before it was handed over twice.
 */
export function deliveryQueueContract(name: string, make: DeliveryQueueFactory): void {
  async function handedThrough(started: StartedQueue, marker: Delivery): Promise<string[]> {
    expect(await started.queue.accept(marker, ORIGIN_A, 0)).toEqual({ kind: 'queued' });
    await eventually(() => (started.handed.some((d) => d.id === marker.id) ? true : undefined), 'the marker to be handed over');
    return started.handed.map((d) => d.id);
  }

  describe(`DeliveryQueue contract (accept): ${name}`, () => {
    it('logs a new delivery pending and hands it over; the same event and URL again is found, neither logged nor queued again', async () => {
      const started = await make({ maxDeliveries: 1000 });
      const first = aDelivery({ eventId: 'evt_accept', url: URL_A });
      expect(await started.queue.accept(first, ORIGIN_A, 0)).toEqual({ kind: 'queued' });
      expect(await started.log.get(first.id)).toEqual(first);
      const again = aDelivery({ eventId: 'evt_accept', url: URL_A });
      expect(await started.queue.accept(again, ORIGIN_A, 0)).toEqual({ kind: 'exists', delivery: first });
      expect(await started.log.get(again.id)).toBeUndefined();
      // Another URL of the same event is its own delivery.
      const elsewhere = aDelivery({ eventId: 'evt_accept', url: 'https://b.example/hooks' });
      expect(await started.queue.accept(elsewhere, 'https://b.example', 0)).toEqual({ kind: 'queued' });
      const marker = aDelivery({ eventId: 'evt_marker', url: URL_A });
      expect(await handedThrough(started, marker)).toEqual([first.id, elsewhere.id, marker.id]);
      expect(started.handed[0]).toEqual(first);
    });

    it('20 concurrent accepts of one event and URL: one is logged and handed over, the 19 others find it', async () => {
      const started = await make({ maxDeliveries: 1000 });
      const tries = Array.from({ length: 20 }, () => aDelivery({ eventId: 'evt_race', url: URL_A }));
      const outcomes = await concurrently(20, (i) => started.queue.accept(tries[i] as Delivery, ORIGIN_A, 0));
      const queued = tries.filter((_, i) => outcomes[i]?.kind === 'queued');
      expect(queued).toHaveLength(1);
      expect(outcomes.filter((o) => o.kind !== 'queued')).toEqual(Array(19).fill({ kind: 'exists', delivery: queued[0] }));
      expect((await started.log.list({ limit: 100, eventId: 'evt_race' })).data).toEqual(queued);
      const marker = aDelivery({ eventId: 'evt_marker', url: URL_A });
      expect(await handedThrough(started, marker)).toEqual([(queued[0] as Delivery).id, marker.id]);
    });

    it('requeue moves a delivery as read to pending and hands it over; one no longer as read (20 calls at once that read it alike, or a change since) is moved, neither changed nor queued', async () => {
      const started = await make({ maxDeliveries: 1000 });
      const first = aDelivery({ eventId: 'evt_requeue', url: URL_A });
      expect(await started.queue.accept(first, ORIGIN_A, 0)).toEqual({ kind: 'queued' });
      const failedAt = first.createdAt + 10;
      const failed = await started.log.update(first.id, { status: 'failed', attempt: { at: failedAt, statusCode: 500, durationMs: 3, error: null }, nextAttemptAt: null, failureReason: 'http_500', updatedAt: failedAt });
      const replay = { status: 'pending' as const, nextAttemptAt: null, failureReason: null, newSeries: true, updatedAt: failedAt + 5 };
      const pending: Delivery = { ...(failed as Delivery), status: 'pending', seriesStart: 1, failureReason: null, updatedAt: failedAt + 5 };
      const outcomes = await concurrently(20, () => started.queue.requeue(failed as Delivery, replay));
      expect(outcomes.filter((o) => o.kind === 'queued')).toEqual([{ kind: 'queued', delivery: pending }]);
      expect(outcomes.filter((o) => o.kind !== 'queued')).toEqual(Array(19).fill({ kind: 'moved', delivery: pending }));
      expect(await started.log.get(first.id)).toEqual(pending);
      // As read before the replay (failed): moved since.
      expect(await started.queue.requeue(failed as Delivery, replay)).toEqual({ kind: 'moved', delivery: pending });
      expect(await started.queue.requeue({ ...(failed as Delivery), id: 'whd_unknown' }, replay)).toEqual({ kind: 'gone' });
      const marker = aDelivery({ eventId: 'evt_marker', url: URL_A });
      expect(await handedThrough(started, marker)).toEqual([first.id, first.id, marker.id]);
      expect(started.handed[1]).toEqual(pending);
    });

    it('a log full of unfinished deliveries: log_full, nothing logged nor queued', async () => {
      const started = await make({ maxDeliveries: 1 });
      const kept = aDelivery({ eventId: 'evt_kept', url: URL_A });
      expect(await started.queue.accept(kept, ORIGIN_A, 0)).toEqual({ kind: 'queued' });
      const refused = aDelivery({ eventId: 'evt_refused', url: URL_A });
      expect(await started.queue.accept(refused, ORIGIN_A, 0)).toEqual({ kind: 'log_full' });
      expect(await started.log.get(refused.id)).toBeUndefined();
      // The one logged is still found, full or not.
      expect(await started.queue.accept(aDelivery({ eventId: 'evt_kept', url: URL_A }), ORIGIN_A, 0)).toEqual({ kind: 'exists', delivery: kept });
      await eventually(() => (started.handed.length === 1 ? true : undefined), 'the kept delivery to be handed over');
      expect(started.handed.map((d) => d.id)).toEqual([kept.id]);
    });
  });
}
