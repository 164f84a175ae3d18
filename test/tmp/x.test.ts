import { it, expect } from 'vitest';
it('x', async () => {
  const woken: number[] = [];
  const start = 0;
  const take = () => Promise.resolve();
  let n = 0;
  const caller = (): void => void take().then(() => (woken.push(1 - start), n++ < 3 ? caller() : undefined));
  caller();
  await new Promise((r) => setTimeout(r, 10));
  expect(woken.length).toBe(4);
});
