import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { inCi } from './promtool.ts';

/**
 * A private `redis-server` (Debian package `redis-server`) for one test file: 127.0.0.1 on a free
 * port, no persistence (no RDB snapshots, no AOF), its working directory a temporary one removed
 * on stop. Tests that use it are skipped without the binary locally and fail in CI (CI set).
 */

export const hasRedisServer = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error === undefined;
export const REDIS_SERVER_MISSING =
  'redis-server is not on PATH and CI is set: install it with `apt-get install -y --no-install-recommends redis-server` (Debian package redis-server)';

export interface TestRedis {
  url: string;
  /** A client of its own (closed by `stop`), for setup and inspection. */
  client: Redis;
  /** A key prefix no other caller of this server has been given: one per store under test. */
  newPrefix(): string;
  /** A new client, closed by `stop`. */
  connect(): Redis;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Resolves once the server says it accepts connections; rejects when it exits first (a port taken meanwhile). */
function started(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: string) => {
      output += chunk;
      if (output.includes('Ready to accept connections')) {
        child.stdout?.off('data', onData);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null) => reject(new Error(`redis-server exited (${code}) before it was ready:\n${output.slice(-2_000)}`));
    child.stdout?.setEncoding('utf8').on('data', onData);
    child.once('exit', onExit);
    child.once('error', reject);
  });
}

export async function startRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'paysim-redis-'));
  let child: ChildProcess | undefined;
  let port = 0;
  for (let attempt = 0; child === undefined; attempt++) {
    port = await freePort();
    const candidate = spawn(
      'redis-server',
      ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'notice'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      await started(candidate);
      child = candidate;
    } catch (error) {
      candidate.kill('SIGKILL');
      if (attempt === 4) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
  const running = child;
  // Drain its output so a chatty server never blocks on a full pipe.
  running.stdout?.resume();
  running.stderr?.resume();
  const url = `redis://127.0.0.1:${port}`;
  const clients: Redis[] = [];
  const connect = (): Redis => {
    const client = new Redis(url, { maxRetriesPerRequest: 1 });
    clients.push(client);
    return client;
  };
  let prefixes = 0;
  return {
    url,
    client: connect(),
    connect,
    newPrefix: () => `t${++prefixes}:`,
    async stop() {
      await Promise.all(clients.map((client) => client.quit().catch(() => client.disconnect())));
      const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
      running.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Declares a test file's tests that need a private redis-server: started before them, stopped
 * after; `body` gets a function answering it (call it inside tests and store factories, once the
 * server runs). Without the binary the tests are replaced by one that is skipped locally and fails
 * in CI (CI set), saying how to install it.
 */
export function withRedisServer(title: string, body: (server: () => TestRedis) => void): void {
  if (!hasRedisServer) {
    describe(title, () => {
      it.skipIf(!inCi)('need redis-server (skipped: not installed)', () => undefined);
      it.runIf(inCi)('need redis-server', () => {
        throw new Error(REDIS_SERVER_MISSING);
      });
    });
    return;
  }
  let redis: TestRedis | undefined;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  body(() => {
    if (redis === undefined) throw new Error('redis-server is not started yet: call this inside a test');
    return redis;
  });
}
