import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, serverProcesses } from '../helpers/child.ts';

/**
 * The compiled service, as `make run` and the image start it: the sources compiled by tsc with
 * the build's configuration (into a temporary folder inside the repository, so node_modules
 * resolve), the console's assets copied as `npm run build` does, then `node server.js` in a child.
 * Every other test runs the TypeScript sources, which Node strips without compiling; a construct
 * that tsc compiles differently (a989681: a static field naming its own class became an undefined
 * reference in dist/server.js) broke only this path, and only the image check saw it.
 */

const run = promisify(execFile);
const SECRET = 'whsec_ZGlzdC1zdGFydC10ZXN0LXNlY3JldC0xMjM0NTY=';
const servers = serverProcesses();
let root = '';
let outDir = '';

beforeAll(async () => {
  // <root>/dist beside a copy of package.json, as in the repository and the image (the service
  // reads ../package.json for its version); node_modules resolve from the repository above.
  await mkdir(join(REPO, '.tmp'), { recursive: true }); // a fresh clone has no .tmp
  root = await mkdtemp(join(REPO, '.tmp', 'dist-start-'));
  outDir = join(root, 'dist');
  await cp(join(REPO, 'package.json'), join(root, 'package.json'));
  const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  // --noCheck: the same JavaScript (compared file by file, 2026-12-08), without the type check that
  // took two thirds of this file's time (26.6 s against 8.8 s at load 5); the types are checked by
  // `make lint` and `make build` in CI before the tests run. What this test is about is the emit.
  await run(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--noCheck', '--outDir', outDir], { cwd: REPO });
  await cp(join(REPO, 'src', 'console', 'assets'), join(outDir, 'console', 'assets'), { recursive: true });
}, 240_000);

afterAll(async () => {
  await servers.killAll();
  if (root !== '') await rm(root, { recursive: true, force: true });
});

describe('the compiled service (tsc output, as dist/server.js)', () => {
  it('starts, serves every dialect and the console, decides a payment and stops on SIGTERM', async () => {
    const server = servers.start({ WEBHOOK_SECRET: SECRET, DEFAULT_APPROVE_DELAY_MS: '0' }, { args: [join(outDir, 'server.js')] });
    const origin = await server.origin();

    const health = await fetch(`${origin}/healthz`);
    expect(health.status).toBe(200);

    const created = await fetch(`${origin}/v1/sim/intent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reservation_id: 'res_dist', amount: 1500, currency: 'EUR', scenario: 'approve' }),
    });
    expect(created.status).toBe(200);
    const answer = (await created.json()) as { payment_intent_id: string; status: string; next: string };
    expect(answer).toEqual({ payment_intent_id: expect.stringMatching(/^pay_[0-9A-HJKMNP-TV-Z]{26}$/), status: 'PENDING', next: 'poll' });

    // Decided by the scheduler after DEFAULT_APPROVE_DELAY_MS (0 here): the compiled scheduler runs.
    let status = 'PENDING';
    for (let i = 0; i < 100 && status === 'PENDING'; i++) {
      const read = await fetch(`${origin}/v1/sim/intents/${answer.payment_intent_id}`);
      expect(read.status).toBe(200);
      status = ((await read.json()) as { status: string }).status;
      if (status === 'PENDING') await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(status).toBe('APPROVED');

    // Each dialect's plugin loaded: an unknown path under its prefix answers in its own shape.
    const v2 = await fetch(`${origin}/api/v2/nowhere`);
    expect(v2.status).toBe(404);
    expect(Object.keys((await v2.json()) as object)).toEqual(['detail']);
    const fluxpay = await fetch(`${origin}/api/v1/orders/ord_01J0000000000000000000000Z/nowhere`);
    expect(fluxpay.status).toBe(404);
    expect((await fluxpay.json()) as object).toMatchObject({ isSuccess: false, code: 'COMMON_404' });

    // The console's page and the assets copied beside the compiled code.
    const page = await fetch(`${origin}/console`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const script = await fetch(`${origin}/console/assets/console.js`);
    expect(script.status).toBe(200);
    expect((await script.text()).length).toBeGreaterThan(100);

    const metrics = await (await fetch(`${origin}/metrics`)).text();
    expect(metrics).toMatch(/^payment_intents_created_total\{[^}]*\} 1$/m);

    server.kill('SIGTERM');
    expect(await server.waitForExit(15_000)).toEqual({ code: 0, signal: null });
  }, 60_000);
});
