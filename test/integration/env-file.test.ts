import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { REPO, serverProcesses, type ServerProcess } from '../helpers/child.ts';

/**
 * `npm start` and `make run` read `.env` from the working directory when it exists (Node's
 * `--env-file-if-exists=.env`), and the environment wins over it. The start script is run as
 * package.json says, in a directory of the test's own with its own `.env`, with `src/server.ts`
 * in place of the build output `dist/server.js` (what `npm run build` compiles it to), so the test
 * needs no build. `make run` must run that same command.
 * @see issue 8 "Small things that cost a newcomer time"
 */

const SECRET = 'whsec_ZW52LWZpbGUtdGVzdC1zZWNyZXQtMTIzNDU=';
const JWT_SECRET = 'env-file-jwt-secret';
const START: string = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start!;
/** The command the start script execs (`exec`: npm's child is the service, which a SIGTERM to npm reaches; test/integration/npm-scripts.test.ts). */
const NODE_COMMAND = START.replace(/^exec /, '');

const servers = serverProcesses();
afterEach(() => servers.killAll());
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh working directory holding `.env` with these lines (none when `lines` is undefined). */
function workdir(lines?: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'paysim-env-'));
  dirs.push(dir);
  if (lines !== undefined) writeFileSync(join(dir, '.env'), `${lines.join('\n')}\n`);
  return dir;
}

/** Node's arguments of the start script, with the source entry point for the build's. */
function startArgs(): string[] {
  const [node, ...args] = NODE_COMMAND.split(/\s+/);
  expect(node).toBe('node');
  return args.map((arg) => (arg === 'dist/server.js' ? join(REPO, 'src', 'server.ts') : arg));
}

/** The start script in `cwd`, with only PATH and `env` in the environment (no HOST or PORT: the `.env` says where to listen). */
function start(cwd: string, env: Record<string, string> = {}): ServerProcess {
  return servers.start(env, { args: startArgs(), cwd, noDefaults: true });
}

describe('the start command reads .env', () => {
  it('npm start is exec node --env-file-if-exists=.env dist/server.js, and make run runs exactly that node command through with-node', () => {
    expect(START).toBe('exec node --env-file-if-exists=.env dist/server.js');
    const dry = spawnSync('make', ['-n', '--no-print-directory', 'run'], { cwd: REPO, encoding: 'utf8' });
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout.split('\n')).toContain(`scripts/with-node.sh ${NODE_COMMAND}`);
  });

  it('listens where .env says, signs with its WEBHOOK_SECRET and authenticates with its JWT_SECRET (a token minted from the same .env works)', async () => {
    // No shedding on event-loop delay: a busy machine must not turn this test into 503 OVERLOADED.
    const dir = workdir(['# a comment', 'HOST=127.0.0.1', 'PORT=0', `WEBHOOK_SECRET=${SECRET}`, `JWT_SECRET="${JWT_SECRET}"`, 'MOCK_MIN_DELAY_MS=0', 'MOCK_MAX_DELAY_MS=0', 'OVERLOAD_MAX_EVENT_LOOP_DELAY_MS=0']);
    const server = start(dir);
    // The listening line names 127.0.0.1 only if HOST came from .env (the default is 0.0.0.0).
    const origin = await server.origin();
    // With WEBHOOK_SECRET from .env there is no generated secret to warn about.
    expect(await (await fetch(`${origin}/readyz`)).json()).toEqual({ status: 'ready' });

    const booked = await fetch(`${origin}/bookings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-id': 'user_test_001' },
      body: JSON.stringify({ performanceId: 'perf_001', quantity: 1, paymentMethod: 'CREDIT_CARD' }),
    });
    expect(booked.status).toBe(201);
    const { bookingId } = (await booked.json()) as { bookingId: string };

    // The token script in the same directory takes JWT_SECRET from the same .env.
    const minted = spawnSync(process.execPath, [join(REPO, 'scripts', 'mint-token.ts'), 'user_test_001', '10m'], { cwd: dir, env: { PATH: process.env.PATH ?? '' }, encoding: 'utf8' });
    expect(minted.status, minted.stderr).toBe(0);
    const paid = await fetch(`${origin}/api/v1/payments/process`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${minted.stdout.trim()}` },
      body: JSON.stringify({ reservationId: bookingId, paymentMethod: 'kakao_pay' }),
    });
    expect([paid.status, await paid.json()]).toEqual([200, expect.objectContaining({ success: true })]);
    expect(server.lines.filter((line) => line.level === 'warn')).toEqual([]);
  });

  it('the environment wins over .env', async () => {
    // RANDOM_APPROVE_RATE=1.5 would stop the start; the environment's 0.5 replaces it.
    const dir = workdir(['HOST=127.0.0.1', 'PORT=0', `WEBHOOK_SECRET=${SECRET}`, 'RANDOM_APPROVE_RATE=1.5']);
    const server = start(dir, { RANDOM_APPROVE_RATE: '0.5' });
    expect((await fetch(`${await server.origin()}/healthz`)).status).toBe(200);
  });

  it('a bad value in .env stops the start like a bad variable: exit 1, one line naming it', async () => {
    const dir = workdir(['HOST=127.0.0.1', 'PORT=0', 'RANDOM_APPROVE_RATE=1.5']);
    const server = start(dir);
    expect(await server.waitForExit(15_000)).toEqual({ code: 1, signal: null });
    expect(server.stderr).toBe('Invalid configuration: RANDOM_APPROVE_RATE must be at most 1 (got "1.5")\n');
  });

  it('without .env it starts on the environment alone', async () => {
    const server = start(workdir(), { HOST: '127.0.0.1', PORT: '0' });
    expect((await fetch(`${await server.origin()}/healthz`)).status).toBe(200);
  });

  it('.env.example copied to .env starts (its values are the defaults; the commented whsec_ example stays a comment)', async () => {
    const example = readFileSync(join(REPO, '.env.example'), 'utf8');
    expect(example).toMatch(/^# WEBHOOK_SECRET=whsec_[A-Za-z0-9+/]{16,}={0,2}$/m);
    expect(parseEnv(example).WEBHOOK_SECRET).toBe('');
    expect(() => loadConfig(parseEnv(example))).not.toThrow();

    const dir = workdir();
    copyFileSync(join(REPO, '.env.example'), join(dir, '.env'));
    // Its HOST and PORT (0.0.0.0:8080) are overridden by the environment, so the test can run anywhere.
    const server = start(dir, { HOST: '127.0.0.1', PORT: '0' });
    const body = (await (await fetch(`${await server.origin()}/readyz`)).json()) as { status: string; details?: Record<string, string> };
    // WEBHOOK_SECRET= is empty, so unset: a secret is generated and /readyz says so.
    expect(body.status).toBe('ready');
    expect(body.details?.webhook_secret).toContain('WEBHOOK_SECRET');
  });
});
