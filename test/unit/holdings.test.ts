import { describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/core/deliveries.ts';
import { QueueHoldings } from '../../src/webhooks/holdings.ts';
import { RecordingQueue } from '../helpers/recording-queue.ts';

function delivery(id: string): Delivery {
  return { id, eventId: `evt_${id}`, type: 'payment.approved', url: 'http://127.0.0.1:1/hooks', subject: null, test: false, body: '{}', extraHeaders: {}, schemes: ['paysim'], status: 'pending', attempts: [], seriesStart: 0, nextAttemptAt: null, failureReason: null, createdAt: 0, updatedAt: 0 };
}

function setUp(): { queue: RecordingQueue; holdings: QueueHoldings; errors: string[] } {
  const queue = new RecordingQueue();
  const errors: string[] = [];
  return { queue, holdings: new QueueHoldings(queue, (error, context) => errors.push(`${context}: ${(error as Error).message}`)), errors };
}

describe('QueueHoldings', () => {
  it('a second entry while the first waits: the first is acknowledged at once and its item passed over; the second is attempted without a second look', async () => {
    const { queue, holdings } = setUp();
    const first = delivery('whd_a');
    const second = delivery('whd_a');
    holdings.take(first, 'T1');
    holdings.take(second, 'T2');
    await Promise.resolve();
    expect([holdings.superseded(first), holdings.superseded(second), holdings.ticketOf(first), holdings.ticketOf(second)]).toEqual([true, false, 'T1', 'T2']);
    expect(holdings.inFlightBefore(second)).toBeUndefined();
    expect(queue.calls).toEqual(['ack T1']);
    holdings.begin('whd_a', 'T2');
    expect(await holdings.end('whd_a', 'T2', true)).toBe(true);
    expect([queue.calls, holdings.holds('whd_a')]).toEqual([['ack T1', 'begin T2', 'ack T2'], false]);
  });

  it('a second entry while the first is in flight: nothing acknowledged early; the second waits for the first attempt to end, which is not the delivery\'s end (a later entry holds it)', async () => {
    const { queue, holdings } = setUp();
    const first = delivery('whd_b');
    const second = delivery('whd_b');
    holdings.take(first, 'T1');
    holdings.begin('whd_b', 'T1');
    holdings.take(second, 'T2');
    const ended = holdings.inFlightBefore(second);
    expect(ended).toBeInstanceOf(Promise);
    let over = false;
    void ended?.then(() => (over = true));
    await Promise.resolve();
    expect([queue.calls, over, holdings.superseded(first)]).toEqual([['begin T1'], false, true]);
    // Its end: acknowledged once; still held (under T2), so not settled by it.
    expect(await holdings.end('whd_b', 'T1', true)).toBe(false);
    expect([queue.calls, over, holdings.holds('whd_b')]).toEqual([['begin T1', 'ack T1'], true, true]);
  });

  it('a third entry while the first is in flight and the second waits: the second is acknowledged and passed over, the third waits for the first', async () => {
    const { queue, holdings } = setUp();
    const [first, second, third] = [delivery('whd_c'), delivery('whd_c'), delivery('whd_c')];
    holdings.take(first, 'T1');
    holdings.begin('whd_c', 'T1');
    holdings.take(second, 'T2');
    holdings.take(third, 'T3');
    await Promise.resolve();
    expect(queue.calls).toEqual(['begin T1', 'ack T2']);
    expect([holdings.superseded(second), holdings.superseded(third), holdings.inFlightBefore(third) === holdings.inFlightBefore(second)]).toEqual([true, false, true]);
  });

  it('releaseWaiting hands back what waits, keeps what is in flight, and answers the ids handed back', () => {
    const { queue, holdings } = setUp();
    holdings.take(delivery('whd_1'), 'T1');
    holdings.take(delivery('whd_2'), 'T2');
    holdings.begin('whd_2', 'T2');
    holdings.take(delivery('whd_3'), 'T3');
    expect(holdings.releaseWaiting()).toEqual(['whd_1', 'whd_3']);
    expect(queue.calls).toEqual(['begin T2', 'release T1', 'release T3']);
    expect([holdings.holds('whd_1'), holdings.holds('whd_2'), holdings.holds('whd_3')]).toEqual([false, true, false]);
  });

  it('an end not recorded hands the entry back; an acknowledgement the store refuses is reported, not thrown', async () => {
    const { queue, holdings, errors } = setUp();
    holdings.take(delivery('whd_r'), 'T1');
    holdings.begin('whd_r', 'T1');
    expect(await holdings.end('whd_r', 'T1', false)).toBe(true);
    holdings.take(delivery('whd_f'), 'T2');
    holdings.begin('whd_f', 'T2');
    queue.failAck = true;
    expect(await holdings.end('whd_f', 'T2', true)).toBe(true);
    expect([queue.calls, errors]).toEqual([['begin T1', 'release T1', 'begin T2', 'ack T2'], ['acknowledging webhook delivery whd_f: store down']]);
  });
});
