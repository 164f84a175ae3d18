import { afterAll, describe, expect, it } from 'vitest';
import { serverProcesses } from '../helpers/child.ts';

/**
 * `npm start` and `npm run dev` as the README starts replicas with them (`… npm start &`): a
 * SIGTERM to npm's process (a script's `kill $!`, a supervisor that signals its child only) must
 * reach the service, which drains and stops. npm runs a script through `sh -c`, which does not pass
 * signals on: before 2026-12-07 npm and its shell ended and the service went on serving, re-parented
 * to init (a user test). The scripts `exec` node, so npm's child is the service itself.
 */

const SECRET = 'whsec_bnBtLXNjcmlwdHMtdGVzdC1zZWNyZXQtMTIzNDU2Nzg=';
const servers = serverProcesses();
afterAll(() => servers.killAll());

describe('npm run dev (npm start runs dist/server.js the same way)', () => {
  it('a SIGTERM to npm drains and stops the service, which exits with npm', async () => {
    const npm = process.env.npm_execpath;
    if (npm === undefined) throw new Error('npm_execpath is not set: run the tests through npm or npx (make test), as the README says');
    const server = servers.start({ WEBHOOK_SECRET: SECRET, SHUTDOWN_DELAY_MS: '0' }, { args: [npm, 'run', '-s', 'dev'] });
    const origin = await server.origin();
    expect((await fetch(`${origin}/readyz`)).status).toBe(200);
    server.kill('SIGTERM');
    await server.waitForLine((l) => l.msg === 'shutdown complete', 30_000);
    await server.waitForExit(30_000);
    // The service is gone with npm, not left serving.
    await expect(fetch(`${origin}/healthz`)).rejects.toThrow();
  }, 60_000);
});
