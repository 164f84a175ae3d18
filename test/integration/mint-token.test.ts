import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/child.ts';

/**
 * `make token USER=… TTL=…` (scripts/mint-token.ts through scripts/with-node.sh, so any Node on
 * the machine will do) prints a bearer token for the payment-service API and nothing else on
 * stdout. The secret is JWT_SECRET of the environment, else of `.env` in the working directory;
 * without either it fails with one line. Tokens are checked with jose, as the service checks them.
 * @see issue 8 "Small things that cost a newcomer time"
 */

const SECRET = 'mint-token-test-secret';
const key = new TextEncoder().encode(SECRET);
const SCRIPT = join(REPO, 'scripts', 'mint-token.ts');
/** This Node first on PATH, so scripts/with-node.sh finds a new enough one and downloads nothing. */
const PATH = [dirname(process.execPath), process.env.PATH ?? '/usr/bin:/bin'].join(delimiter);

const hasMake = spawnSync('make', ['--version'], { stdio: 'ignore' }).error === undefined;
/** scripts/with-node.sh runs `npm ci` when node_modules is older than package-lock.json: never from inside a test run. */
const modulesFresh = statSync(join(REPO, 'node_modules', '.package-lock.json')).mtimeMs >= statSync(join(REPO, 'package-lock.json')).mtimeMs;

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function workdir(envFile?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'paysim-token-'));
  dirs.push(dir);
  if (envFile !== undefined) writeFileSync(join(dir, '.env'), envFile);
  return dir;
}

function script(args: string[], cwd: string, env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [SCRIPT, ...args], { cwd, env: { PATH, ...env }, encoding: 'utf8' });
}

async function verified(stdout: string): Promise<{ userId: unknown; sub: unknown; lifetime: number }> {
  expect(stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  const token = stdout.trim();
  expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'JWT' });
  const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'] });
  return { userId: payload.userId, sub: payload.sub, lifetime: payload.exp! - payload.iat! };
}

describe('make token', () => {
  it.skipIf(!hasMake || !modulesFresh)('make -s token USER=user_test_001 TTL=1h prints only a token that verifies with JWT_SECRET', async () => {
    const res = spawnSync('make', ['-s', '--no-print-directory', 'token', 'USER=user_test_001', 'TTL=1h'], { cwd: REPO, env: { PATH, HOME: process.env.HOME ?? '/tmp', JWT_SECRET: SECRET }, encoding: 'utf8' });
    expect(res.status, res.stderr).toBe(0);
    expect(res.stderr).toBe('');
    expect(await verified(res.stdout)).toEqual({ userId: 'user_test_001', sub: 'user_test_001', lifetime: 3600 });
  });

  it.skipIf(!hasMake || !modulesFresh)('USER from the login environment is not taken for the user id: the default is user_test_001, TTL 1h', async () => {
    const res = spawnSync('make', ['-s', '--no-print-directory', 'token'], { cwd: REPO, env: { PATH, HOME: process.env.HOME ?? '/tmp', USER: 'root', JWT_SECRET: SECRET }, encoding: 'utf8' });
    expect(res.status, res.stderr).toBe(0);
    expect(await verified(res.stdout)).toEqual({ userId: 'user_test_001', sub: 'user_test_001', lifetime: 3600 });
  });
});

describe('scripts/mint-token.ts', () => {
  it('takes JWT_SECRET from .env in the working directory when the environment has none (or an empty one)', async () => {
    const dir = workdir(`# local settings\nPORT=8080\nJWT_SECRET="${SECRET}"\n`);
    expect(await verified(script(['user_a', '15m'], dir).stdout)).toEqual({ userId: 'user_a', sub: 'user_a', lifetime: 900 });
    expect(await verified(script(['user_a', '90'], dir, { JWT_SECRET: '' }).stdout)).toEqual({ userId: 'user_a', sub: 'user_a', lifetime: 90 });
  });

  it('the environment wins over .env', async () => {
    const dir = workdir('JWT_SECRET=the-one-in-the-file\n');
    expect(await verified(script(['user_b'], dir, { JWT_SECRET: SECRET }).stdout)).toMatchObject({ userId: 'user_b', lifetime: 3600 });
  });

  it.each([
    ['no .env', undefined],
    ['a .env without JWT_SECRET', 'PORT=8080\n'],
    ['a .env with an empty JWT_SECRET', 'JWT_SECRET=\n'],
  ])('without JWT_SECRET (%s): exit 1 and one line on stderr saying so', (_name, envFile) => {
    const res = script(['user_test_001'], workdir(envFile));
    expect(res.status).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toBe(
      "mint-token: JWT_SECRET is not set, neither in the environment nor in .env: use the service's value, e.g. JWT_SECRET=local-dev-secret make token USER=user_test_001\n",
    );
  });

  it.each([
    ['no user id', []],
    ['a bad ttl', ['user_test_001', '10x']],
  ])('%s: exit 1 and one line on stderr', (_name, args) => {
    const res = script(args, workdir(), { JWT_SECRET: SECRET });
    expect(res.status).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/^mint-token: [^\n]+; usage: make token USER=<userId>[^\n]*\n$/);
  });
});
