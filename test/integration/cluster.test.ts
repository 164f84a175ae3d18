import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO, runToExit, serverProcesses, type LogLine, type ServerProcess } from '../helpers/child.ts';
import { REDIS_START_TIMEOUT_MS } from '../../src/plugins/app/stores.ts';
import { SAME_STOP_MS } from '../../src/stop-signals.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { redisServerOrSkip, startRedis, type TestRedis } from '../helpers/redis.ts';

/**
 * The service as several processes: CLUSTER_WORKERS=N runs N workers on one port (node:cluster),
 * which only makes sense when they share their state (STORE=redis). `node src/server.ts` in a
 * child process, on a private redis-server.
 * @see issue 14 "Running several processes"
 */

const SECRET = 'whsec_Y2x1c3Rlci10ZXN0LXNlY3JldC0xMjM0NQ==';
/** A cluster's start is two starts of the service, on a machine that may be busy. */
const TIMEOUT_MS = 120_000;

const servers = serverProcesses();
afterEach(async () => {
  await servers.killAll();
});

/** One request on a connection of its own, so the primary hands each to the next worker. */
function call(origin: string, method: string, path: string, body?: object): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(`${origin}${path}`, { method, agent: false, headers: payload === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** A /metrics scrape on a connection of its own (the next worker's), as text. */
function scrape(origin: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${origin}/metrics`, { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`/metrics answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The sum of a scrape's samples of `name` (every label set). */
function sampleSum(text: string, name: string): number {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

const listening = (line: LogLine) => typeof line.msg === 'string' && line.msg.startsWith('Server listening at ');

/** Resolves once `count` lines match `predicate`. */
async function linesMatching(server: ServerProcess, count: number, predicate: (line: LogLine) => boolean): Promise<LogLine[]> {
  await server.waitForLine(() => server.lines.filter(predicate).length >= count, TIMEOUT_MS);
  return server.lines.filter(predicate);
}

describe('CLUSTER_WORKERS with STORE=memory', () => {
  it('stops the start with one line saying why (exit 1, nothing on stdout)', async () => {
    const run = await runToExit({ WEBHOOK_SECRET: SECRET, CLUSTER_WORKERS: '2', STORE: 'memory' });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      'Invalid configuration: CLUSTER_WORKERS=2 needs STORE=redis (with STORE=memory each worker would keep its own intents, keys and seats, and a request could reach a worker that does not know them)\n',
    );
  });
});

if (redisServerOrSkip('CLUSTER_WORKERS with STORE=redis')) {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  // Starts that fail: each a process (or a cluster) of its own run to its exit, sharing nothing but
  // the redis-server (a key prefix each), so they run at once; most of their time is a start's, and
  // one waits out REDIS_START_TIMEOUT_MS.
  describe.concurrent('STORE=redis: a start that fails', { timeout: TIMEOUT_MS }, () => {
    it('a Redis that cannot be reached stops the start with one line naming it (exit 1)', async ({ expect }) => {
      const gone = await startRedis();
      const url = gone.url;
      await gone.stop();
      const run = await runToExit({ WEBHOOK_SECRET: SECRET, STORE: 'redis', REDIS_URL: url }, 60_000);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      const port = new URL(url).port;
      expect(run.stderr).toBe(`Could not start: Redis at ${url} could not be reached (connect ECONNREFUSED 127.0.0.1:${port}); start it or set REDIS_URL\n`);
    });

    it('a server that takes the connection and never answers (not Redis, or TLS on one side only) stops the start with one line too, not a stack trace', async ({ expect }) => {
      const silent = createServer(() => undefined);
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const port = (silent.address() as AddressInfo).port;
      try {
        // Both at once: each waits out REDIS_START_TIMEOUT_MS.
        const urls = [`redis://127.0.0.1:${port}`, `rediss://127.0.0.1:${port}`];
        const runs = await Promise.all(urls.map((url) => runToExit({ WEBHOOK_SECRET: SECRET, STORE: 'redis', REDIS_URL: url }, 60_000)));
        expect(runs.map((run, i) => [urls[i], run.code, run.stdout, run.stderr])).toEqual(
          urls.map((url) => [
            url,
            1,
            '',
            `Could not start: Redis at ${url} could not be reached (no answer within ${REDIS_START_TIMEOUT_MS / 1000} s: is it Redis, does it speak TLS if and only if the URL is rediss://, and is it not loading a data set without answering meanwhile (its loading-process-events-interval-bytes)?); start it or set REDIS_URL\n`,
          ]),
        );
      } finally {
        silent.close();
      }
    });

    // XGROUP: the webhook stream's consumer group, made as buildApp registers the webhooks plugin;
    // EVALSHA on sched:queue: the scheduler's first look at its due work, awaited in core's onReady
    // hook (listen). (The delivery queue's first XAUTOCLAIM, which this once used, runs in its own
    // loop, not awaited by the start: on a busy machine it came after the server listened.)
    it.for([
      ['XGROUP', 'XGROUP', undefined],
      ["the scheduler's EVALSHA in onReady", 'EVALSHA', 'sched:queue'],
    ] as const)('a Redis that goes away part way through the start, after it answered (at its first %s), stops the start with one line too, not a stack trace (exit 1)', async ([, command, naming], { expect }) => {
      const keyPrefix = redis.newPrefix();
      const proxy = await proxyDroppingAt(Number(new URL(redis.url).port), command, naming === undefined ? undefined : keyPrefix + naming);
      try {
        const run = await runToExit({ WEBHOOK_SECRET: SECRET, STORE: 'redis', REDIS_URL: proxy.url, REDIS_KEY_PREFIX: keyPrefix }, 60_000);
        expect([run.code, run.stderr]).toEqual([1, `Could not start: Redis at ${proxy.url} stopped answering during the start (the connection was lost and could not be made again); start it or set REDIS_URL\n`]);
        // It had answered: the start's scripts ran before the command that found it gone.
        expect(proxy.commands).toEqual(expect.arrayContaining(['ping', 'evalsha', command.toLowerCase()]));
        expect(proxy.commands.at(-1)).toBe(command.toLowerCase());
        expect(run.stdout).not.toContain('Server listening');
        // Nor a warning that it reconnects, just before it exits.
        expect(run.stdout).not.toContain('Redis is unreachable');
      } finally {
        proxy.close();
      }
    });

    it('a HOST that does not resolve is told as such with STORE=redis too, not blamed on Redis', async ({ expect }) => {
      const run = await runToExit({ WEBHOOK_SECRET: SECRET, STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), HOST: '999.1.1.1' }, 60_000);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^Could not start: HOST 999\.1\.1\.1 is neither an IP address nor a name that resolves \((ENOTFOUND|EAI_AGAIN|EAI_FAIL|EAI_NONAME)\); set HOST to [^\n]*\n$/);
    });

    it('CLUSTER_WORKERS=2 with a Redis that cannot be reached: the start fails (exit 1), each worker saying why on stderr; the primary loaded none of the app', async ({ expect }) => {
      const gone = await startRedis();
      const url = gone.url;
      await gone.stop();
      const dir = mkdtempSync(join(tmpdir(), 'paysim-primary-'));
      const modulesFile = join(dir, 'modules');
      const hook = join(REPO, 'test', 'helpers', 'record-modules.ts');
      const run = await runToExit({ WEBHOOK_SECRET: SECRET, STORE: 'redis', REDIS_URL: url, CLUSTER_WORKERS: '2', NODE_OPTIONS: `--import=${hook}`, LOADED_MODULES_FILE: modulesFile }, 90_000);
      // The primary forks and supervises; the workers load the app, each (src/server.ts).
      const loaded = readFileSync(modulesFile, 'utf8').split('\n').filter((url) => url.startsWith('file:') && !url.includes('/node_modules/')).map((url) => relative(REPO, fileURLToPath(url)));
      rmSync(dir, { recursive: true, force: true });
      expect(loaded).toContain('src/cluster.ts');
      expect(loaded).toContain('src/logger.ts');
      for (const module of ['src/serve.ts', 'src/app.ts', 'src/tracing.ts', 'src/plugins/app/namespace-registry.ts', 'src/plugins/app/stores.ts']) expect(loaded).not.toContain(module);
      expect(run.code).toBe(1);
      const port = new URL(url).port;
      const line = `Could not start: Redis at ${url} could not be reached (connect ECONNREFUSED 127.0.0.1:${port}); start it or set REDIS_URL`;
      const lines = run.stderr.split('\n').filter((l) => l !== '');
      expect(lines.length).toBeGreaterThanOrEqual(1);
      for (const l of lines) expect(l).toBe(line);
      expect(run.stdout).toContain('a worker could not start (its reason is on stderr); stopping the other workers');
      expect(run.stdout).toContain('"msg":"every worker has exited"');
    });
  });

  describe('STORE=redis', { timeout: TIMEOUT_MS }, () => {
    it('CLUSTER_WORKERS=2 without WEBHOOK_SECRET: the workers share one generated secret on Redis, each says which, and every webhook verifies with it', async () => {
      const receiver = await startReceiver();
      const prefix = redis.newPrefix();
      const server = servers.start({ STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, CLUSTER_WORKERS: '2' });
      try {
        await linesMatching(server, 2, listening);
        const origin = await server.origin();
        // Each request on a connection of its own reaches the next worker: both say the secret was generated.
        for (let i = 0; i < 4; i++) {
          const ready = await call(origin, 'GET', '/readyz');
          expect([ready.status, (ready.json.details as Record<string, string> | undefined)?.webhook_secret]).toEqual([
            200,
            `WEBHOOK_SECRET is not set: webhooks are signed with a random secret generated by the first process on the key prefix and kept on Redis (${prefix}generated:webhook-secret), shared by every replica (see the log); set WEBHOOK_SECRET so receivers can verify them.`,
          ]);
        }
        const created = 12;
        for (let i = 0; i < created; i++) {
          const res = await call(origin, 'POST', '/v1/sim/intent', { reservation_id: `res_secret_${i}`, amount: 100, scenario: 'approve', delay_ms: 0, webhook_url: receiver.url(`/hook/${i}`) });
          expect(res.status).toBe(200);
        }
        const received = await receiver.waitFor(created, 60_000);
        const warnings = server.lines.filter((l) => l.level === 'warn');
        expect(warnings.map((w) => w.worker).sort()).toEqual([1, 2]);
        for (const w of warnings) expect(w.msg).toContain('WEBHOOK_SECRET is not set: webhooks are signed with this generated secret (kept on Redis under ');
        const secret = warnings[0]?.generated_webhook_secret as string;
        expect(secret).toMatch(/^whsec_\S{16,}$/);
        expect(warnings[1]?.generated_webhook_secret).toBe(secret);
        // Every one verifies with the one secret, whichever worker sent it (each reads the shared delivery stream).
        const verifier = new Webhook(secret);
        for (const r of received) expect(() => verifier.verify(r.body, r.headers as Record<string, string>)).not.toThrow();
      } finally {
        await receiver.close();
      }
    });

    it('CLUSTER_WORKERS=2 started with --env-file-if-exists: without .env Node says so once (the primary), not once more per worker; with one, the workers have what it set', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'paysim-cluster-env-'));
      const run = async (env: Record<string, string>): Promise<ServerProcess> => {
        const server = servers.start(
          { STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), CLUSTER_WORKERS: '2', ...env },
          { args: ['--env-file-if-exists=.env', join(REPO, 'src', 'server.ts')], cwd: dir },
        );
        await linesMatching(server, 2, listening);
        server.kill('SIGTERM');
        expect(await server.waitForExit(60_000)).toEqual({ code: 0, signal: null });
        return server;
      };
      try {
        const without = await run({ WEBHOOK_SECRET: SECRET });
        expect(without.stderr.split('\n').filter((line) => line.includes('.env not found'))).toHaveLength(1);
        // WEBHOOK_SECRET only in .env: a worker without it would generate one and warn.
        writeFileSync(join(dir, '.env'), `WEBHOOK_SECRET=${SECRET}\n`);
        const withEnv = await run({});
        expect(withEnv.lines.filter((l) => typeof l.msg === 'string' && l.msg.includes('WEBHOOK_SECRET'))).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('CLUSTER_WORKERS=2 without CONSOLE_TOKEN: a console session (and its CSRF token) one worker issued is good on the other', async () => {
      const server = servers.start({ WEBHOOK_SECRET: SECRET, STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), CLUSTER_WORKERS: '2' });
      await linesMatching(server, 2, listening);
      const origin = await server.origin();
      const page = await fetch(`${origin}/console/rules`);
      const cookie = String(page.headers.get('set-cookie')).split(';', 1)[0] as string;
      const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(await page.text())?.[1] as string;
      expect(csrf).toMatch(/^[\w-]{43}$/);
      // Each POST on a connection of its own: the primary hands them to the workers in turn.
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await new Promise<number>((resolve, reject) => {
          const body = `_csrf=${csrf}`;
          const req = request(`${origin}/console/rules/rule_${i}/delete`, { method: 'POST', agent: false, headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) } }, (r) => {
            r.resume();
            r.on('end', () => resolve(r.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end(body);
        });
        statuses.push(res);
      }
      // Past the CSRF check on both workers (no such rule: 404), never 403 (a session or CSRF token that worker did not know).
      expect(statuses).toEqual([404, 404, 404, 404]);
      const served = await linesMatching(server, 4, (l) => typeof l.url === 'string' && l.url.startsWith('/console/rules/rule_'));
      expect(new Set(served.map((l) => l.worker))).toEqual(new Set([1, 2]));

      // Each page names the worker that served it, as the log lines do (its charts are that process's own).
      const started = await linesMatching(server, 2, (l) => l.msg === 'worker started');
      const names = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const text = await new Promise<string>((resolve, reject) => {
          request(`${origin}/console/rules`, { agent: false, headers: { cookie } }, (r) => {
            let body = '';
            r.setEncoding('utf8');
            r.on('data', (chunk: string) => (body += chunk));
            r.on('end', () => resolve(body));
          })
            .on('error', reject)
            .end();
        });
        names.add(/<span class="served-by" id="served-by">([^<]*)<\/span>/.exec(text)?.[1] ?? `none in page ${i}`);
      }
      expect([...names].sort()).toEqual(started.map((l) => `served by ${hostname()}, process ${String(l.worker_pid)} (worker ${String(l.worker)})`).sort());
    });

    it('CLUSTER_WORKERS=2: two workers serve one port and share the state; a worker that dies is logged and replaced; SIGTERM stops all', async () => {
      // The intents wait a minute: the worker that stops last, with no replica left to hand them to,
      // keeps them for its drain budget (they stay on Redis); 1 s of it, not the default 10 s.
      const server = servers.start({ WEBHOOK_SECRET: SECRET, STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), CLUSTER_WORKERS: '2', SHUTDOWN_TIMEOUT_MS: '1000' });
      const started = await linesMatching(server, 2, (l) => l.msg === 'worker started');
      expect(started.map((l) => l.worker).sort()).toEqual([1, 2]);
      expect((await linesMatching(server, 2, listening)).map((l) => l.worker).sort()).toEqual([1, 2]);
      const origin = await server.origin();

      // Each request on a new connection: the primary hands connections to the workers in turn.
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const created = await call(origin, 'POST', '/v1/sim/intent', { reservation_id: `res_${i}`, amount: 100 + i, scenario: 'delay', delay_ms: 60_000 });
        expect(created.status).toBe(200);
        ids.push(created.json.payment_intent_id as string);
      }
      for (const [i, id] of ids.entries()) {
        const read = await call(origin, 'GET', `/v1/sim/intents/${id}`);
        expect([read.status, read.json.payment_intent_id, read.json.amount, read.json.status]).toEqual([200, id, 100 + i, 'PENDING']);
      }
      const served = await linesMatching(server, 12, (l) => typeof l.url === 'string' && l.url.startsWith('/v1/sim/intent'));
      expect(new Set(served.map((l) => l.worker))).toEqual(new Set([1, 2]));

      // Whichever worker a scrape reaches, it counts every worker's requests, and what both read from
      // Redis once (before 2026-12-06 each scrape showed its worker's alone: 3 of the 6 creates).
      for (let i = 0; i < 4; i++) {
        const text = await scrape(origin);
        expect(sampleSum(text, 'payment_intents_created_total'), `scrape ${i}`).toBe(6);
        expect(sampleSum(text, 'http_requests_total{method="GET",route="/v1/sim/intents/:id",status_code="200"}'), `scrape ${i}`).toBe(6);
        expect(text, `scrape ${i}`).toContain('\nstore_records{store="intents"} 6\n');
        expect(text, `scrape ${i}`).toContain('\nready 1\n');
      }
      const scraped = await linesMatching(server, 4, (l) => l.url === '/metrics');
      expect(new Set(scraped.map((l) => l.worker))).toEqual(new Set([1, 2]));

      const victim = started.find((l) => l.worker === 1)?.worker_pid as number;
      process.kill(victim, 'SIGKILL');
      const [died] = await linesMatching(server, 1, (l) => l.msg === 'a worker died; starting a new one');
      expect(died).toMatchObject({ level: 'error', worker: 1, worker_pid: victim, code: null, signal: 'SIGKILL' });
      // A scrape while the replacement starts (a process, no app yet) is not held for it: the primary
      // asks the workers that serve (before, it waited 3 s for the replacement and said it sent nothing).
      // The dead worker's counts stay in the sum (before, 3: read by Prometheus as a counter reset).
      await linesMatching(server, 1, (l) => l.msg === 'worker started' && l.worker === 3);
      expect(sampleSum(await scrape(origin), 'payment_intents_created_total')).toBe(6);
      await linesMatching(server, 1, (l) => listening(l) && l.worker === 3);
      expect(server.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('metrics:'))).toEqual([]);
      const after = await call(origin, 'GET', `/v1/sim/intents/${ids[0] as string}`);
      expect([after.status, after.json.payment_intent_id]).toEqual([200, ids[0]]);

      // Every port is on Redis: no worker warns of state kept in its own memory.
      expect(server.lines.filter((l) => l.level === 'warn')).toEqual([]);

      server.kill('SIGTERM');
      expect(await server.waitForExit(60_000)).toEqual({ code: 0, signal: null });
      expect(server.lines.filter((l) => l.msg === 'shutdown complete').map((l) => l.worker).sort()).toEqual([2, 3]);
      expect(server.lines.at(-1)).toMatchObject({ msg: 'every worker has exited', exit_code: 0 });
    });

    it('CLUSTER_WORKERS=2: a connection the primary handed to a worker that died before taking it is closed, not held open by the primary for good', async () => {
      const server = servers.start({ WEBHOOK_SECRET: SECRET, STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), CLUSTER_WORKERS: '2' });
      const started = await linesMatching(server, 2, (l) => l.msg === 'worker started');
      await linesMatching(server, 2, listening);
      const { port } = new URL(await server.origin());
      const victim = started.find((l) => l.worker === 1)?.worker_pid as number;
      // Stopped, worker 1 never takes (acknowledges) the connection the primary hands it next.
      process.kill(victim, 'SIGSTOP');
      // Two connections of their own: the primary hands one to each worker, in turn.
      const sockets = [createConnection(Number(port), '127.0.0.1'), createConnection(Number(port), '127.0.0.1')];
      const outcomes = sockets.map(
        (socket) =>
          new Promise<string>((resolve) => {
            let text = '';
            socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
            socket.on('error', () => undefined);
            socket.on('close', () => resolve(text.split('\r\n', 1)[0] as string));
            socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
          }),
      );
      // The other worker answers its own.
      expect(await Promise.race(outcomes)).toBe('HTTP/1.1 200 OK');
      process.kill(victim, 'SIGKILL');
      await linesMatching(server, 1, (l) => l.msg === 'a worker died; starting a new one');
      // The connection handed to the dead worker closes without an answer (a client retries it, as
      // the README says of a dead worker's connections). Before, the primary kept its copy of the
      // socket open for good: the client waited for ever, and the primary held one more descriptor.
      const both = await Promise.race([Promise.all(outcomes), delay(20_000).then(() => 'a connection still open 20 s after the kill')]);
      expect(both).toEqual(expect.arrayContaining(['HTTP/1.1 200 OK', '']));
      for (const socket of sockets) socket.destroy();
    });

    it('CLUSTER_WORKERS=2: a worker stopped on its own (SIGTERM to it alone) is replaced and logged at warn, not as a crash; a primary killed with SIGKILL leaves a line from each worker as it ends', async () => {
      const server = servers.start({ WEBHOOK_SECRET: SECRET, STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), CLUSTER_WORKERS: '2' });
      const started = await linesMatching(server, 2, (l) => l.msg === 'worker started');
      await linesMatching(server, 2, listening);
      const pids = started.map((l) => l.worker_pid as number);
      try {
        const first = started.find((l) => l.worker === 1)?.worker_pid as number;
        process.kill(first, 'SIGTERM');
        const [stopped] = await linesMatching(server, 1, (l) => typeof l.msg === 'string' && l.msg.startsWith('a worker stopped'));
        expect(stopped).toMatchObject({ level: 'warn', msg: 'a worker stopped (exit code 0); starting a new one', worker: 1, worker_pid: first, code: 0, signal: null });
        const [third] = await linesMatching(server, 1, (l) => l.msg === 'worker started' && l.worker === 3);
        pids.push(third?.worker_pid as number);
        await linesMatching(server, 1, (l) => listening(l) && l.worker === 3);
        expect(server.lines.filter((l) => l.level === 'error')).toEqual([]);

        // Before 2026-12-06 the workers ended without a line (node:cluster ends them at once).
        server.kill('SIGKILL');
        const gone = await linesMatching(server, 2, (l) => typeof l.msg === 'string' && l.msg.startsWith('the primary is gone'));
        expect(gone.map((l) => [l.level, l.worker]).sort()).toEqual([
          ['warn', 2],
          ['warn', 3],
        ]);
      } finally {
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
    });

    it('CLUSTER_WORKERS=2: a scrape whose combined metrics the primary cannot give (paused) is a 503 with Retry-After after 5 s, not the worker’s own counts (a counter reset to Prometheus); once it resumes, the same connection scrapes again', async () => {
      const server = servers.start({ WEBHOOK_SECRET: SECRET, STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), CLUSTER_WORKERS: '2' });
      await linesMatching(server, 2, listening);
      const origin = await server.origin();
      for (let i = 0; i < 2; i++) expect((await call(origin, 'POST', '/v1/sim/intent', { reservation_id: `res_paused_${i}`, amount: 100, scenario: 'delay', delay_ms: 60_000 })).status).toBe(200);
      // One kept connection, as Prometheus scrapes: it stays with its worker while the primary, which
      // hands out connections, is stopped.
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const keptScrape = (): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> =>
        new Promise((resolve, reject) => {
          const req = request(`${origin}/metrics`, { agent }, (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
          });
          req.on('error', reject);
          req.end();
        });
      const primary = server.child.pid as number;
      try {
        const before = await keptScrape();
        expect([before.status, sampleSum(before.text, 'payment_intents_created_total')]).toEqual([200, 2]);
        process.kill(primary, 'SIGSTOP');
        const startedAt = Date.now();
        const paused = await keptScrape();
        const waitedMs = Date.now() - startedAt;
        process.kill(primary, 'SIGCONT');
        expect({ status: paused.status, retryAfter: paused.headers['retry-after'], type: paused.headers['content-type'], text: paused.text }).toEqual({
          status: 503,
          retryAfter: '1',
          type: 'text/plain; charset=utf-8',
          text: "the primary did not send the workers' combined metrics within 5000 ms\n",
        });
        expect(waitedMs).toBeGreaterThanOrEqual(4_900);
        const [warned] = await linesMatching(server, 1, (l) => l.msg === "metrics: the workers' combined metrics could not be had; answered 503");
        expect(warned).toMatchObject({ level: 'warn', err: { message: "the primary did not send the workers' combined metrics within 5000 ms" } });
        const after = await keptScrape();
        expect([after.status, sampleSum(after.text, 'payment_intents_created_total')]).toEqual([200, 2]);
      } finally {
        process.kill(primary, 'SIGCONT');
        agent.destroy();
      }
    });

    it.each<[NodeJS.Signals, 'group' | 'primary']>([
      ['SIGTERM', 'group'],
      ['SIGINT', 'group'],
      ['SIGINT', 'primary'],
    ])('CLUSTER_WORKERS=2: %s to the %s (the whole group, as GNU timeout, kill -- -PGID, systemd or Ctrl-C send it; or the primary alone): one stop each, the pending intents decided and their webhooks sent, exit 0 (before 2026-12-05 the workers took the primary’s copy of a group’s SIGTERM for a second signal and exited at once, and a SIGINT to the primary alone was not passed on)', async (signal, to) => {
      const receiver = await startReceiver();
      try {
        const server = servers.start({ WEBHOOK_SECRET: SECRET, STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), CLUSTER_WORKERS: '2' });
        const started = await linesMatching(server, 2, (l) => l.msg === 'worker started');
        await linesMatching(server, 2, listening);
        const origin = await server.origin();
        const ids: string[] = [];
        for (let i = 0; i < 4; i++) {
          const created = await call(origin, 'POST', '/v1/sim/intent', { reservation_id: `res_group_${i}`, amount: 100, scenario: 'delay', delay_ms: 1500, webhook_url: receiver.url(`/group/${i}`) });
          expect(created.status).toBe(200);
          ids.push(created.json.payment_intent_id as string);
        }
        if (to === 'group') for (const line of started) process.kill(line.worker_pid as number, signal);
        server.kill(signal);
        expect(await server.waitForExit(60_000)).toEqual({ code: 0, signal: null });
        const received = await receiver.waitFor(4, 10_000);
        expect(received.map((r) => (JSON.parse(r.body) as { payment_intent_id: string }).payment_intent_id).sort()).toEqual([...ids].sort());
        // Each worker stopped once, drained and completed; the copy its primary passed on was the same stop.
        expect(server.lines.filter((l) => l.msg === 'shutting down').map((l) => [l.worker, l.signal]).sort()).toEqual([[1, signal], [2, signal]]);
        expect(server.lines.filter((l) => l.msg === 'shutdown complete').map((l) => l.worker).sort()).toEqual([1, 2]);
        expect(server.lines.filter((l) => l.level === 'error')).toEqual([]);
        // The copies told as the same stop: none, when the kernel merged a worker's two copies into one
        // delivery (a busy machine: both pending before it ran), which is the same stop as well.
        const same = server.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith(`${signal} within 500 ms of the first stop signal`));
        expect(same.every((l) => l.level === 'info')).toBe(true);
        expect(server.lines.at(-1)).toMatchObject({ msg: 'every worker has exited', exit_code: 0 });
      } finally {
        await receiver.close();
      }
    });

    it('CLUSTER_WORKERS=2: SIGHUP shuts down as SIGTERM does (passed to every worker, which begins its SHUTDOWN_DELAY_MS), and a second signal ends them at once, exit 1, as in one process', async () => {
      const server = servers.start({ WEBHOOK_SECRET: SECRET, STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix(), CLUSTER_WORKERS: '2', SHUTDOWN_DELAY_MS: '20000' });
      await linesMatching(server, 2, listening);
      server.kill('SIGHUP');
      const leaving = await linesMatching(server, 2, (l) => l.msg === 'shutting down' && l.signal === 'SIGHUP');
      expect(leaving.map((l) => l.worker).sort()).toEqual([1, 2]);
      await linesMatching(server, 2, (l) => l.shutdown_delay_ms === 20_000);
      // Later than SAME_STOP_MS after the first: a second signal, not the same stop again.
      await delay(SAME_STOP_MS + 100);
      const secondAt = Date.now();
      server.kill('SIGTERM');
      // Well within the 20 s delay: the workers exit at once.
      expect(await server.waitForExit(15_000)).toEqual({ code: 1, signal: null });
      expect(Date.now() - secondAt).toBeLessThan(10_000);
      expect(server.lines.filter((l) => l.worker === undefined).map((l) => [l.level, l.msg, l.signal ?? l.exit_code])).toEqual([
        ['info', 'starting 2 workers on one port', undefined],
        ['info', 'shutting down: SIGHUP is passed to every worker', 'SIGHUP'],
        ['error', 'second SIGTERM: passed to every worker, which exits at once', 'SIGTERM'],
        ['info', 'every worker has exited', 1],
      ]);
    });
  });
}

/**
 * A TCP proxy in front of Redis at `upstreamPort` that, when a client first sends `command` (with
 * `naming` among its arguments, when given), drops every connection and stops listening (Redis gone
 * for good); `commands` lists the commands it saw.
 */
async function proxyDroppingAt(upstreamPort: number, command: string, naming?: string): Promise<{ url: string; commands: string[]; close(): void }> {
  const sockets = new Set<Socket>();
  const commands: string[] = [];
  let gone = false;
  const proxy = createServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    const upstream = createConnection({ host: '127.0.0.1', port: upstreamPort });
    sockets.add(upstream);
    upstream.on('error', () => undefined);
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('data', (chunk) => client.write(chunk));
    client.on('data', (chunk) => {
      if (gone) return;
      const text = chunk.toString('latin1');
      const headers = [...text.matchAll(/\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n/g)];
      for (const [i, header] of headers.entries()) {
        const name = header[1] as string;
        commands.push(name.toLowerCase());
        if (name.toUpperCase() !== command) continue;
        // This command's arguments: up to the next command in the chunk.
        if (naming !== undefined && !text.slice(header.index, headers[i + 1]?.index).includes(naming)) continue;
        gone = true;
        proxy.close();
        for (const socket of sockets) socket.destroy();
        return;
      }
      upstream.write(chunk);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const close = (): void => {
    proxy.close();
    for (const socket of sockets) socket.destroy();
  };
  return { url: `redis://127.0.0.1:${(proxy.address() as AddressInfo).port}`, commands, close };
}
