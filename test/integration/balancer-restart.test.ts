import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO, serverProcesses } from '../helpers/child.ts';
import { inCi } from '../helpers/promtool.ts';
import { closedPort, eventually } from '../helpers/receiver.ts';

/*
 * A replica stopped behind the Compose stack's balancer (deploy/compose/haproxy.cfg, a real HAProxy)
 * under load: with the Compose file's SHUTDOWN_DELAY_MS, HAProxy's checks take it out before it
 * closes, so no client sees the stop. Before 2026-12-04 a stop that handed its work off ended
 * within a second, before the checks noticed, and a user test saw 0–4 requests per stop meet the
 * close (a 503 SHUTTING_DOWN or a reset connection, which HAProxy's `retry-on conn-failure` does not
 * retry). The checks run ten times quicker here than in Compose (every 200 ms) and the delay five
 * times (1 s): HAProxy's own timing under a busy machine's load is not what is tested; the Compose
 * file's delay against its checks is, statically, by deploy-files.test.ts.
 */

const hasHaproxy = spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).error === undefined;
const CHECKS_SCALE = 10;
const DELAY_SCALE = 5;
const CLIENTS = 8;

const servers = serverProcesses();
afterEach(() => servers.killAll());

/** The Compose file's SHUTDOWN_DELAY_MS for the replicas. */
function composeShutdownDelayMs(): number {
  const compose = parse(readFileSync(join(REPO, 'docker-compose.yml'), 'utf8')) as { 'x-paysim': { environment: Record<string, string> } };
  return Number(compose['x-paysim'].environment.SHUTDOWN_DELAY_MS);
}

describe.skipIf(!hasHaproxy && !inCi)('a replica stopped behind the Compose HAProxy', () => {
  it('under load, with the Compose file\u2019s SHUTDOWN_DELAY_MS: every request through the balancer answers 200, and the stopped replica exits 0', { timeout: 60_000 }, async () => {
    if (!hasHaproxy) throw new Error('haproxy is not on PATH and CI is set: install it with `apt-get install -y --no-install-recommends haproxy`');
    const delayMs = composeShutdownDelayMs();
    expect(delayMs).toBeGreaterThan(0);
    // Decided at once, so the drain has nothing to wait for, as a replica on Redis that hands its work off.
    const env = { WEBHOOK_SECRET: 'whsec_YmFsYW5jZXItcmVzdGFydC10ZXN0', DEFAULT_APPROVE_DELAY_MS: '0', SHUTDOWN_DELAY_MS: String(delayMs / DELAY_SCALE) };
    const replicas = [servers.start(env), servers.start(env)];
    const ports = await Promise.all(replicas.map(async (r) => new URL(await r.url('/')).port));
    const [front, stats] = await Promise.all([closedPort(), closedPort()]);
    const config = readFileSync(join(REPO, 'deploy/compose/haproxy.cfg'), 'utf8')
      .replaceAll('paysim-1:8080', `127.0.0.1:${ports[0]}`)
      .replaceAll('paysim-2:8080', `127.0.0.1:${ports[1]}`)
      .replace('bind :8080', `bind 127.0.0.1:${front}`)
      .replace('bind :8404', `bind 127.0.0.1:${stats}`)
      .replaceAll('inter 2s', `inter ${2000 / CHECKS_SCALE}ms`)
      // Quicker checks, their time to answer as the file's (without it, the check's interval: a stall of the test process marked a ready replica down, a review).
      .replace('    timeout connect 3s', '    timeout connect 3s\n    timeout check 2s');
    expect(config).toContain(`inter ${2000 / CHECKS_SCALE}ms`);
    expect(config).toContain('timeout check 2s');
    const dir = mkdtempSync(join(tmpdir(), 'paysim-balancer-'));
    writeFileSync(join(dir, 'haproxy.cfg'), config);
    const haproxy = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: 'ignore' });
    // Keep-alive connections to the balancer, as a load generator keeps them.
    const agent = new Agent({ connections: CLIENTS, keepAliveTimeout: 30_000 });
    const create = async (i: number): Promise<string> => {
      try {
        const res = await request(`http://127.0.0.1:${front}/v1/sim/intent`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ reservation_id: `r-lb-${i}`, amount: 100 }),
          dispatcher: agent,
          signal: AbortSignal.timeout(5_000),
        });
        const text = await res.body.text();
        return res.statusCode === 200 ? 'ok' : `${res.statusCode} ${text.slice(0, 120)}`;
      } catch (error) {
        return `error ${(error as Error).message}`;
      }
    };
    try {
      // Both replicas up in HAProxy (rise 2): requests answered.
      await eventually(async () => ((await create(-1)) === 'ok' ? true : undefined), 'HAProxy up', 15_000);
      await delay((3 * 2000) / CHECKS_SCALE);
      const outcomes: string[] = [];
      let loading = true;
      let sent = 0;
      const clients = Array.from({ length: CLIENTS }, async () => {
        while (loading) outcomes.push(await create(sent++));
      });
      await delay(300);
      // A client of the replica still sending its request (a slow upload) holds its close for the
      // requests' grace (500 ms): the window in which a request on a connection HAProxy already has
      // open meets the close, as the quiesce of a Redis replica's work holds it in Compose.
      const slow = connect(Number(ports[0]), '127.0.0.1');
      slow.on('error', () => undefined);
      slow.write('POST /v1/sim/intent HTTP/1.1\r\nHost: paysim\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{');
      const stoppedAt = Date.now();
      replicas[0]!.kill('SIGTERM');
      expect(await replicas[0]!.waitForExit(15_000)).toEqual({ code: 0, signal: null });
      const stopMs = Date.now() - stoppedAt;
      await delay(300);
      loading = false;
      await Promise.all(clients);
      slow.destroy();
      const failures = outcomes.filter((o) => o !== 'ok');
      expect({ failures: failures.slice(0, 10), failed: failures.length }).toEqual({ failures: [], failed: 0 });
      expect(outcomes.length).toBeGreaterThan(100);
      // It waited its delay before it drained, and served requests meanwhile.
      expect(stopMs).toBeGreaterThanOrEqual(delayMs / DELAY_SCALE);
      expect(replicas[0]!.lines.filter((l) => l.msg === 'request completed' && l.url === '/v1/sim/intent').length).toBeGreaterThan(0);
    } finally {
      haproxy.kill('SIGTERM');
      await agent.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
