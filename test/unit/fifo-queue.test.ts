import { describe, expect, it } from 'vitest';
import { FifoQueue } from '../../src/core/fifo-queue.ts';

describe('FifoQueue', () => {
  it('gives items back in the order they came, and peeks without taking', () => {
    const queue = new FifoQueue<number>();
    for (let i = 0; i < 5; i++) queue.push(i);
    expect(queue.peek()).toBe(0);
    expect([queue.shift(), queue.shift()]).toEqual([0, 1]);
    expect([...queue]).toEqual([2, 3, 4]);
    expect(queue.size).toBe(3);
    expect(queue.drain()).toEqual([2, 3, 4]);
    expect([queue.size, queue.shift(), queue.peek()]).toEqual([0, undefined, undefined]);
  });

  it('refuses items beyond its bound and changes nothing', () => {
    const queue = new FifoQueue<string>(2);
    expect([queue.push('a'), queue.push('b'), queue.push('c')]).toEqual([true, true, false]);
    expect([queue.full, [...queue]]).toEqual([true, ['a', 'b']]);
    queue.shift();
    expect([queue.full, queue.push('c'), [...queue]]).toEqual([false, true, ['b', 'c']]);
  });

  it('keeps order through compaction over a long interleaving of pushes and shifts', () => {
    const queue = new FifoQueue<number>();
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 200; round++) {
      for (let i = 0; i < 100; i++) queue.push(next++);
      for (let i = 0; i < 90; i++) expect(queue.shift()).toBe(expected++);
    }
    expect(queue.size).toBe(2000);
    expect([...queue]).toEqual(Array.from({ length: 2000 }, (_, i) => expected + i));
  });
});
