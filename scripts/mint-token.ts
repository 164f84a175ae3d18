import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { SignJWT } from 'jose';

/**
 * Mints a bearer token for the payment-service API (`POST /api/v1/payments/process`) for local
 * use: HS256 with the service's JWT_SECRET, the user in both `userId` and `sub`.
 *
 *   make token USER=<userId> [TTL=1h]                      (any Node: runs through scripts/with-node.sh)
 *   scripts/with-node.sh node scripts/mint-token.ts <userId> [ttl]
 *
 * The secret is JWT_SECRET from the environment or, when that is unset or empty, from `.env` in
 * the current directory: the file `npm start` and `make run` read, so the token matches the
 * service they start. `ttl` is seconds (`3600`) or a span jose understands (`15m`, `2h`, `7d`);
 * default `1h`. Prints the token and nothing else on stdout, so `TOKEN=$(make -s token USER=u)` works.
 * Exit codes: 0 printed, 1 bad usage or no JWT_SECRET (one line on stderr saying which).
 */

const USAGE = 'usage: make token USER=<userId> [TTL=<seconds|15m|2h|7d>] (or: scripts/with-node.sh node scripts/mint-token.ts <userId> [ttl])';
const SPAN = /^\d+\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days|w|week|weeks|y|yr|yrs|year|years)$/i;
const ENV_FILE = '.env';

function fail(message: string): never {
  process.stderr.write(`mint-token: ${message}\n`);
  process.exit(1);
}

/** JWT_SECRET of the environment, else of `.env` (parsed as Node's --env-file parses it); an empty value counts as unset. */
function jwtSecret(): string | undefined {
  const fromEnv = process.env.JWT_SECRET;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  let text: string;
  try {
    text = readFileSync(ENV_FILE, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    fail(`cannot read ${ENV_FILE}: ${(error as Error).message}`);
  }
  const fromFile = parseEnv(text).JWT_SECRET;
  return fromFile === undefined || fromFile === '' ? undefined : fromFile;
}

const [userId, ttl = '1h'] = process.argv.slice(2);
if (userId === undefined || userId === '' || userId.length > 128) fail(`a userId of 1–128 characters is required; ${USAGE}`);
if (!/^\d+$/.test(ttl) && !SPAN.test(ttl)) fail(`ttl must be seconds or a span such as 15m, 2h, 7d (got ${JSON.stringify(ttl)}); ${USAGE}`);
const secret = jwtSecret();
if (secret === undefined) {
  fail(`JWT_SECRET is not set, neither in the environment nor in ${ENV_FILE}: use the service's value, e.g. JWT_SECRET=local-dev-secret make token USER=${userId}`);
}

const now = Math.floor(Date.now() / 1000);
const token = await new SignJWT({ userId })
  .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
  .setSubject(userId)
  .setIssuedAt(now)
  .setExpirationTime(/^\d+$/.test(ttl) ? now + Number(ttl) : ttl)
  .sign(new TextEncoder().encode(secret));
process.stdout.write(`${token}\n`);
