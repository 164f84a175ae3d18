import { SignJWT } from 'jose';

/**
 * Mints a bearer token for the payment-service API (`POST /api/v1/payments/process`) for local
 * use: HS256 with the JWT_SECRET of the environment, the user in both `userId` and `sub`.
 *
 *   JWT_SECRET=… node scripts/mint-token.ts <userId> [ttl]
 *
 * `ttl` is seconds (`3600`) or a span jose understands (`15m`, `2h`, `7d`); default `1h`.
 * Prints the token and nothing else on stdout, so `TOKEN=$(node scripts/mint-token.ts user_1)` works.
 * Exit codes: 0 printed, 1 bad usage or no JWT_SECRET.
 */

const USAGE = 'usage: JWT_SECRET=<secret> node scripts/mint-token.ts <userId> [ttl, e.g. 3600, 15m, 2h; default 1h]';
const SPAN = /^\d+\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days|w|week|weeks|y|yr|yrs|year|years)$/i;

function fail(message: string): never {
  process.stderr.write(`mint-token: ${message}\n`);
  process.exit(1);
}

const [userId, ttl = '1h'] = process.argv.slice(2);
const secret = process.env.JWT_SECRET;
if (userId === undefined || userId === '' || userId.length > 128) fail(`a userId of 1–128 characters is required\n${USAGE}`);
if (secret === undefined || secret === '') fail(`JWT_SECRET is not set: use the same value as the service's JWT_SECRET\n${USAGE}`);
if (!/^\d+$/.test(ttl) && !SPAN.test(ttl)) fail(`ttl must be seconds or a span such as 15m, 2h, 7d (got ${JSON.stringify(ttl)})\n${USAGE}`);

const now = Math.floor(Date.now() / 1000);
const token = await new SignJWT({ userId })
  .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
  .setSubject(userId)
  .setIssuedAt(now)
  .setExpirationTime(/^\d+$/.test(ttl) ? now + Number(ttl) : ttl)
  .sign(new TextEncoder().encode(secret));
process.stdout.write(`${token}\n`);
