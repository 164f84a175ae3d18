import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runToExit, serverProcesses, type ServerProcess } from '../helpers/child.ts';
import { inCi } from '../helpers/promtool.ts';
import { eventually, startReceiver, type Receiver } from '../helpers/receiver.ts';
import { redisServerOrSkip } from '../helpers/redis.ts';
import { startRedisServer, type RedisServerProcess } from '../helpers/redis-server.ts';
import { hasOpenssl, makeTestCa, type TestCa } from '../helpers/test-ca.ts';
import { REDIS_START_TIMEOUT_MS } from '../../src/plugins/app/stores.ts';

/**
 * `REDIS_URL=rediss://` against a real redis-server that takes TLS only (`--port 0 --tls-port`),
 * its certificate for 127.0.0.1 signed by a CA made for the file (test/helpers/test-ca.ts): the
 * service trusts it through NODE_EXTRA_CA_CERTS or REDIS_TLS_CA, and says so in one line when it
 * does not; TLS on one side only; a password over TLS; a Redis that asks for a client certificate
 * (REDIS_TLS_CERT and REDIS_TLS_KEY), on TLS 1.3 and 1.2. `node src/server.ts` in a child.
 * @see https://redis.io/docs/latest/operate/oss_and_stack/management/security/encryption/
 */

const SECRET = 'whsec_cmVkaXMtdGxzLXRlc3Qtc2VjcmV0LTEyMzQ1';
/** A password in each URL, which must never be printed. */
const PASSWORD = 'tls-pw-9f3c1e';

const servers = serverProcesses();
afterEach(async () => {
  await servers.killAll();
});

if (!hasOpenssl) {
  describe('Redis over TLS', () => {
    it.skipIf(!inCi)('needs openssl (skipped: not installed)', () => undefined);
    it.runIf(inCi)('needs openssl', () => {
      throw new Error('openssl is not on PATH and CI is set: install it with `apt-get install -y --no-install-recommends openssl`');
    });
  });
} else if (redisServerOrSkip('Redis over TLS')) {
  let ca: TestCa;
  /** TLS only, no password. */
  let tls: RedisServerProcess;
  /** TLS only, `requirepass`. */
  let tlsWithPassword: RedisServerProcess;
  /** TLS only, asking for a client certificate signed by `ca` (`tls-auth-clients yes`). */
  let tlsClientCertificates: RedisServerProcess;
  /** The same on TLS 1.2 only (`tls-protocols TLSv1.2`), which has no alert for a certificate missing. */
  let tls12ClientCertificates: RedisServerProcess;
  /** Another CA, whose client certificate `ca`'s Redis refuses. */
  let otherCa: TestCa;
  /** Without TLS. */
  let plain: RedisServerProcess;
  let receiver: Receiver;
  beforeAll(async () => {
    [ca, otherCa] = [makeTestCa(), makeTestCa()];
    const certificate = { certFile: ca.certFile, keyFile: ca.keyFile };
    [tls, tlsWithPassword, tlsClientCertificates, tls12ClientCertificates, plain, receiver] = await Promise.all([
      startRedisServer({ tls: certificate }),
      startRedisServer({ tls: certificate, extraArgs: ['--requirepass', PASSWORD] }),
      startRedisServer({ tls: { ...certificate, clientCaFile: ca.caFile }, extraArgs: ['--requirepass', PASSWORD] }),
      startRedisServer({ tls: { ...certificate, clientCaFile: ca.caFile }, extraArgs: ['--tls-protocols', 'TLSv1.2'] }),
      startRedisServer(),
      startReceiver(),
    ]);
  });
  afterAll(async () => {
    await Promise.all([tls?.stop(), tlsWithPassword?.stop(), tlsClientCertificates?.stop(), tls12ClientCertificates?.stop(), plain?.stop(), receiver?.close()]);
    ca?.remove();
    otherCa?.remove();
  });

  const env = (url: string, extra: Record<string, string> = {}): Record<string, string> => ({ WEBHOOK_SECRET: SECRET, STORE: 'redis', REDIS_URL: url, ...extra });
  const withPassword = (url: string, password = PASSWORD): string => url.replace('://', `://:${password}@`);
  const shown = (url: string): string => url.replace('://', '://:***@');

  /**
   * An intent created on `server`, its webhook delivered to the receiver, and the intent read back
   * with the delivery stored: the whole bodies. The webhook goes through the delivery queue's
   * blocking reader, a connection of its own (`duplicate()`), so over TLS this sees it made too.
   */
  const createdReadBackAndDelivered = async (server: ServerProcess, reservationId: string): Promise<void> => {
    const hook = receiver.url(`/hook-${reservationId}`);
    const created = await fetch(await server.url('/v1/sim/intent'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reservation_id: reservationId, amount: 1500, scenario: 'approve', delay_ms: 0, webhook_url: hook }),
    });
    const answer = (await created.json()) as { payment_intent_id: string };
    expect([created.status, answer]).toEqual([200, { payment_intent_id: expect.stringMatching(/^pay_[0-9A-Z]{26}$/), status: 'PENDING', next: 'webhook' }]);
    const id = answer.payment_intent_id;

    const delivered = await eventually(() => receiver.requests.find((request) => request.url === `/hook-${reservationId}`), 'the webhook delivered', 15_000);
    const time = expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(JSON.parse(delivered.body)).toEqual({
      id: expect.stringMatching(/^evt_[0-9A-Z]{26}$/),
      type: 'payment.approved',
      created_at: time,
      payment_intent_id: id,
      reservation_id: reservationId,
      amount: 1500,
      currency: 'KRW',
      status: 'APPROVED',
      failure_code: null,
      refunded_amount: 0,
      ts: time,
      metadata: null,
    });

    // The delivery's outcome is stored just after the receiver answered.
    const intentUrl = await server.url(`/v1/sim/intents/${id}`);
    const read = await eventually(async () => {
      const body = (await (await fetch(intentUrl)).json()) as { webhook: { status: string } | null };
      return body.webhook?.status === 'delivered' ? body : undefined;
    }, 'the delivery stored as delivered');
    expect(read).toEqual(
      {
        payment_intent_id: id,
        reservation_id: reservationId,
        amount: 1500,
        currency: 'KRW',
        scenario: 'approve',
        status: 'APPROVED',
        failure_code: null,
        refunded_amount: 0,
        delay_ms: 0,
        webhook_url: hook,
        metadata: null,
        created_at: time,
        updated_at: time,
        decided_at: time,
        webhook: { status: 'delivered', attempts: 1, last_status_code: 200, last_attempt_at: time },
      },
    );
  };

  describe('Redis over TLS (rediss://)', { timeout: 60_000 }, () => {
    it('with its CA in NODE_EXTRA_CA_CERTS (still trusted with another CA in REDIS_TLS_CA): ready, an intent created and read back, its webhook delivered', async () => {
      const server = servers.start(env(tls.url, { NODE_EXTRA_CA_CERTS: ca.caFile, REDIS_TLS_CA: otherCa.caFile }));
      const ready = await fetch(await server.url('/readyz'));
      expect([ready.status, await ready.text()]).toEqual([200, '{"status":"ready"}']);

      await createdReadBackAndDelivered(server, 'tls-1');
    });

    it('without the CA: the start stops with one line naming the certificate problem, REDIS_TLS_CA and NODE_EXTRA_CA_CERTS, the password nowhere', async () => {
      const url = withPassword(tls.url);
      const run = await runToExit(env(url), 30_000);
      expect([run.code, run.stdout, run.stderr]).toEqual([
        1,
        '',
        `Could not start: Redis at ${shown(tls.url)} sent a certificate this process does not trust (UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate); for a private CA set REDIS_TLS_CA (or NODE_EXTRA_CA_CERTS) to its certificate (a PEM file)\n`,
      ]);
      expect(run.stdout + run.stderr).not.toContain(PASSWORD);
    });

    it('a Redis restarted with a certificate of another CA while the service runs: /readyz says the fix in the start\'s words, no line has a stack, and the service is back once the trusted certificate is', async () => {
      // The server's certificate files are copies, swapped for another CA's while Redis is stopped.
      const other = makeTestCa();
      const dir = mkdtempSync(join(tmpdir(), 'paysim-rotate-'));
      const certFile = join(dir, 'server.pem');
      const keyFile = join(dir, 'server.key');
      const use = (from: TestCa): void => {
        copyFileSync(from.certFile, certFile);
        copyFileSync(from.keyFile, keyFile);
      };
      use(ca);
      const rotating = await startRedisServer({ tls: { certFile, keyFile } });
      try {
        const server = servers.start(env(withPassword(rotating.url), { NODE_EXTRA_CA_CERTS: ca.caFile }));
        const readyz = await server.url('/readyz');
        expect((await fetch(readyz)).status).toBe(200);

        use(other);
        await rotating.pause();
        await rotating.resume();
        const refused = await eventually(async () => {
          const res = await fetch(readyz);
          const body = (await res.json()) as { details?: { store?: string } };
          return res.status === 503 && body.details?.store?.includes('certificate') === true ? body : undefined;
        }, '/readyz to name the untrusted certificate');
        expect(refused).toEqual({
          status: 'store_unavailable',
          details: {
            store: `Redis at ${shown(rotating.url)} sent a certificate this process does not trust (UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate); for a private CA set REDIS_TLS_CA (or NODE_EXTRA_CA_CERTS) to its certificate (a PEM file); reconnecting`,
          },
        });

        use(ca);
        await rotating.pause();
        await rotating.resume();
        await eventually(async () => ((await fetch(readyz)).status === 200 ? true : undefined), '/readyz 200 again');
        expect(server.lines.filter((line) => line.err !== undefined)).toEqual([]);
        expect(server.output).not.toContain(PASSWORD);
      } finally {
        await rotating.stop();
        other.remove();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a host name its certificate does not name (localhost; it names 127.0.0.1): one line saying so', async () => {
      const url = tls.url.replace('127.0.0.1', 'localhost');
      const run = await runToExit(env(withPassword(url), { NODE_EXTRA_CA_CERTS: ca.caFile }), 30_000);
      expect([run.code, run.stdout, run.stderr]).toEqual([
        1,
        '',
        `Could not start: Redis at ${shown(url)} sent a certificate for another name (Hostname/IP does not match certificate's altnames: Host: localhost. is not cert's CN: 127.0.0.1); use in REDIS_URL a host name or address its certificate names\n`,
      ]);
      expect(run.stdout + run.stderr).not.toContain(PASSWORD);
    });

    it('redis:// to the TLS port: one line saying the connection was reset before any answer and that a TLS-only Redis needs rediss://', async () => {
      const url = tls.url.replace('rediss://', 'redis://');
      const run = await runToExit(env(withPassword(url)), 30_000);
      expect([run.code, run.stdout, run.stderr]).toEqual([
        1,
        '',
        `Could not start: Redis at ${shown(url)} reset the connection before it answered anything (ECONNRESET): a Redis that takes TLS only does so to a redis:// URL (for TLS use rediss://), and so does one at its maxclients or a proxy with no Redis behind it; else start it or set REDIS_URL\n`,
      ]);
      expect(run.stdout + run.stderr).not.toContain(PASSWORD);
    });

    it('redis:// to a server that resets every connection without TLS (a proxy with no Redis behind it; a Redis at its maxclients does so too): the line names TLS as one cause, not the only one (before: told "as a Redis that takes TLS only does")', async () => {
      const resetting = createServer((socket) => socket.resetAndDestroy());
      await new Promise<void>((resolve) => resetting.listen(0, '127.0.0.1', resolve));
      try {
        const url = `redis://127.0.0.1:${(resetting.address() as AddressInfo).port}`;
        const run = await runToExit(env(withPassword(url)), 30_000);
        expect([run.code, run.stdout, run.stderr]).toEqual([
          1,
          '',
          `Could not start: Redis at ${shown(url)} reset the connection before it answered anything (ECONNRESET): a Redis that takes TLS only does so to a redis:// URL (for TLS use rediss://), and so does one at its maxclients or a proxy with no Redis behind it; else start it or set REDIS_URL\n`,
        ]);
        expect(run.stdout + run.stderr).not.toContain(PASSWORD);
      } finally {
        await new Promise((resolve) => resetting.close(resolve));
      }
    });

    it('rediss:// to a server that resets each connection once the TLS handshake is over (what a Redis asking for a client certificate does when the write comes before its alert): one line naming tls-auth-clients (before: "could not be reached (write ECONNRESET)" in 1 start in 20)', async () => {
      const secureContext = createSecureContext({ cert: readFileSync(ca.certFile), key: readFileSync(ca.keyFile) });
      // TLS over a plain socket of its own: a TLSSocket cannot reset (resetAndDestroy), its socket can.
      const resetting = createServer((raw) => {
        raw.on('error', () => undefined);
        const secure = new TLSSocket(raw, { isServer: true, secureContext });
        secure.on('error', () => undefined);
        secure.once('secure', () => raw.resetAndDestroy());
      });
      await new Promise<void>((resolve) => resetting.listen(0, '127.0.0.1', resolve));
      try {
        const url = `rediss://127.0.0.1:${(resetting.address() as AddressInfo).port}`;
        const run = await runToExit(env(withPassword(url), { NODE_EXTRA_CA_CERTS: ca.caFile }), 30_000);
        expect([run.code, run.stdout, run.stderr]).toEqual([
          1,
          '',
          `Could not start: Redis at ${shown(url)} reset the connection after the TLS handshake, before it answered anything (ECONNRESET), as a Redis that asks for a client certificate (its tls-auth-clients yes) does when none is sent; set REDIS_TLS_CERT and REDIS_TLS_KEY to a client certificate and its key signed by a CA that Redis trusts (its tls-ca-cert-file), else see its log (its maxclients?)\n`,
        ]);
        expect(run.stdout + run.stderr).not.toContain(PASSWORD);
      } finally {
        await new Promise((resolve) => resetting.close(resolve));
      }
    });

    it(`rediss:// to a Redis without TLS: no answer to the handshake, one line after ${REDIS_START_TIMEOUT_MS / 1000} s`, async () => {
      const url = plain.url.replace('redis://', 'rediss://');
      const run = await runToExit(env(withPassword(url), { NODE_EXTRA_CA_CERTS: ca.caFile }), 30_000);
      expect([run.code, run.stdout, run.stderr]).toEqual([
        1,
        '',
        `Could not start: Redis at ${shown(url)} could not be reached (no answer within ${REDIS_START_TIMEOUT_MS / 1000} s: is it Redis, does it speak TLS if and only if the URL is rediss://, and is it not loading a data set without answering meanwhile (its loading-process-events-interval-bytes)?); start it or set REDIS_URL\n`,
      ]);
      expect(run.stdout + run.stderr).not.toContain(PASSWORD);
    });

    it('with a password (requirepass) over TLS: ready and serving; a wrong one stops the start with the refusal, neither password printed', async () => {
      const server = servers.start(env(withPassword(tlsWithPassword.url), { NODE_EXTRA_CA_CERTS: ca.caFile }));
      const ready = await fetch(await server.url('/readyz'));
      expect([ready.status, await ready.text()]).toEqual([200, '{"status":"ready"}']);
      const created = await fetch(await server.url('/v1/sim/intent'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ reservation_id: 'tls-2', amount: 100 }) });
      const { payment_intent_id: id } = (await created.json()) as { payment_intent_id: string };
      const read = await fetch(await server.url(`/v1/sim/intents/${id}`));
      expect([created.status, read.status, await read.json()]).toEqual([200, 200, expect.objectContaining({ payment_intent_id: id, reservation_id: 'tls-2', amount: 100 })]);
      expect(server.stdout + server.stderr).not.toContain(PASSWORD);

      const wrong = 'not-the-password-41';
      const run = await runToExit(env(withPassword(tlsWithPassword.url, wrong), { NODE_EXTRA_CA_CERTS: ca.caFile }), 30_000);
      expect([run.code, run.stdout, run.stderr]).toEqual([
        1,
        '',
        `Could not start: Redis at ${shown(tlsWithPassword.url)} refused the user or password (WRONGPASS invalid username-password pair or user is disabled.); set the ones it knows in REDIS_URL\n`,
      ]);
      expect(run.stdout + run.stderr).not.toContain(wrong);
    });
  });
  describe('Redis asking for a client certificate (tls-auth-clients yes): REDIS_TLS_CERT and REDIS_TLS_KEY', { timeout: 60_000 }, () => {
    const clientCertificate = (from: TestCa): Record<string, string> => ({ REDIS_TLS_CERT: from.clientCertFile, REDIS_TLS_KEY: from.clientKeyFile });
    /** A line of the client key's PEM body, which no output may hold. */
    const keyLine = (from: TestCa): string => readFileSync(from.clientKeyFile, 'utf8').split('\n')[1] as string;

    it('with a client certificate its CA signed, and that CA in REDIS_TLS_CA instead of NODE_EXTRA_CA_CERTS: ready, an intent created and read back, its webhook delivered; no key or password in the output', async () => {
      const server = servers.start(env(withPassword(tlsClientCertificates.url), { ...clientCertificate(ca), REDIS_TLS_CA: ca.caFile }));
      const ready = await fetch(await server.url('/readyz'));
      expect([ready.status, await ready.text()]).toEqual([200, '{"status":"ready"}']);
      await createdReadBackAndDelivered(server, 'mtls-1');
      expect(server.lines.filter((line) => line.err !== undefined || line.redis_error !== undefined)).toEqual([]);
      expect(server.output).not.toContain(PASSWORD);
      expect(server.output).not.toContain(keyLine(ca));
    });

    it('without one: the start stops with one line naming REDIS_TLS_CERT and REDIS_TLS_KEY, not OpenSSL\'s raw words', async () => {
      const run = await runToExit(env(withPassword(tlsClientCertificates.url), { REDIS_TLS_CA: ca.caFile }), 30_000);
      // The alert when any of the start's three attempts read it (19 starts in 20 in a test); else each
      // attempt's write came first and met a reset after the handshake (a test above makes that one).
      expect([run.code, run.stdout]).toEqual([1, '']);
      expect([
        `Could not start: Redis at ${shown(tlsClientCertificates.url)} asks for a client certificate (its tls-auth-clients yes); set REDIS_TLS_CERT and REDIS_TLS_KEY to a client certificate and its key signed by a CA that Redis trusts (its tls-ca-cert-file)\n`,
        `Could not start: Redis at ${shown(tlsClientCertificates.url)} reset the connection after the TLS handshake, before it answered anything (ECONNRESET), as a Redis that asks for a client certificate (its tls-auth-clients yes) does when none is sent; set REDIS_TLS_CERT and REDIS_TLS_KEY to a client certificate and its key signed by a CA that Redis trusts (its tls-ca-cert-file), else see its log (its maxclients?)\n`,
      ]).toContain(run.stderr);
      expect(run.stdout + run.stderr).not.toContain(PASSWORD);
    });

    it('one of another CA: the start stops with one line saying Redis refused it (TLS 1.2 always reads the alert; on 1.3 a reset may come first)', async () => {
      const tls12 = await runToExit(env(tls12ClientCertificates.url, { ...clientCertificate(otherCa), REDIS_TLS_CA: ca.caFile }), 30_000);
      expect([tls12.code, tls12.stdout, tls12.stderr]).toEqual([
        1,
        '',
        `Could not start: Redis at ${tls12ClientCertificates.url} refused the client certificate of REDIS_TLS_CERT (TLS alert unknown ca: not signed by a CA it trusts); give REDIS_TLS_CERT and REDIS_TLS_KEY a certificate and key signed by a CA in its tls-ca-cert-file\n`,
      ]);
      const tls13 = await runToExit(env(withPassword(tlsClientCertificates.url), { ...clientCertificate(otherCa), REDIS_TLS_CA: ca.caFile }), 30_000);
      expect([tls13.code, tls13.stdout]).toEqual([1, '']);
      expect([
        `Could not start: Redis at ${shown(tlsClientCertificates.url)} refused the client certificate of REDIS_TLS_CERT (TLS alert unknown ca: not signed by a CA it trusts); give REDIS_TLS_CERT and REDIS_TLS_KEY a certificate and key signed by a CA in its tls-ca-cert-file\n`,
        `Could not start: Redis at ${shown(tlsClientCertificates.url)} reset the connection after the TLS handshake, before it answered anything (ECONNRESET), as a Redis does that refuses the client certificate of REDIS_TLS_CERT (one not signed by a CA in its tls-ca-cert-file); give REDIS_TLS_CERT and REDIS_TLS_KEY a certificate and key signed by a CA it trusts, else see its log (its maxclients?)\n`,
      ]).toContain(tls13.stderr);
      expect(tls12.stderr + tls13.stdout + tls13.stderr).not.toContain(keyLine(otherCa));
      expect(tls13.stderr).not.toContain(PASSWORD);
    });

    it('one for servers only (extendedKeyUsage serverAuth), which Redis refuses with alert 43: one line saying Redis refused it (before: "could not be reached (… alert unsupported certificate …); start it or set REDIS_URL")', async () => {
      const run = await runToExit(env(tls12ClientCertificates.url, { REDIS_TLS_CERT: ca.serverOnlyClientCertFile, REDIS_TLS_KEY: ca.clientKeyFile, REDIS_TLS_CA: ca.caFile }), 30_000);
      expect([run.code, run.stdout, run.stderr]).toEqual([
        1,
        '',
        `Could not start: Redis at ${tls12ClientCertificates.url} refused the client certificate of REDIS_TLS_CERT (TLS alert unsupported certificate); give REDIS_TLS_CERT and REDIS_TLS_KEY a certificate and key for client authentication (within its dates, clientAuth among its extended key usages if it names any) signed by a CA in its tls-ca-cert-file\n`,
      ]);
    });

    it('none, to a Redis on TLS 1.2 (whose only alert is handshake failure): one line naming the client certificate as the likely cause (before: "could not be reached" with OpenSSL\'s words)', async () => {
      const run = await runToExit(env(tls12ClientCertificates.url, { NODE_EXTRA_CA_CERTS: ca.caFile }), 30_000);
      expect([run.code, run.stdout, run.stderr]).toEqual([
        1,
        '',
        `Could not start: Redis at ${tls12ClientCertificates.url} ended the TLS handshake with a handshake failure (TLS alert 40): on TLS 1.2, what a Redis that asks for a client certificate (its tls-auth-clients yes) says when none is sent (set REDIS_TLS_CERT and REDIS_TLS_KEY to a client certificate and its key signed by a CA that Redis trusts (its tls-ca-cert-file)); else no TLS version or cipher is common to both (its tls-protocols, tls-ciphers)\n`,
      ]);
    });

    it('a Redis that comes back refusing the client certificate while the service runs: /readyz tells the refusal at each read, also while later attempts end in a reset after the handshake (TLS 1.3\'s race with the alert) or wait on an unanswered handshake, until a connection refused (ECONNREFUSED) is the truth (before: "is unreachable (read ECONNRESET)" 14 reads in 16 and "took the connection and has not answered yet" in between)', async () => {
      // A TCP proxy (no TLS of its own) in front of what each phase needs, switched between attempts:
      // the serving Redis; one on TLS 1.2 trusting another CA's client certificates (its alert unknown ca
      // always read, no race); TLS servers that reset each connection after the handshake, or answer nothing.
      const refusing = await startRedisServer({ tls: { certFile: ca.certFile, keyFile: ca.keyFile, clientCaFile: otherCa.caFile }, extraArgs: ['--tls-protocols', 'TLSv1.2'] });
      const secureContext = createSecureContext({ cert: readFileSync(ca.certFile), key: readFileSync(ca.keyFile) });
      const tlsServer = async (secure: (raw: Socket) => void, context: SecureContext): Promise<{ port: number; close(): Promise<unknown>; connections: number; closed: number; sockets: Set<Socket> }> => {
        const server = createServer((raw) => {
          raw.on('error', () => undefined);
          state.sockets.add(raw);
          raw.on('close', () => {
            state.sockets.delete(raw);
            state.closed += 1;
          });
          const tlsSocket = new TLSSocket(raw, { isServer: true, secureContext: context });
          tlsSocket.on('error', () => undefined);
          tlsSocket.once('secure', () => {
            state.connections += 1;
            secure(raw);
          });
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const close = (): Promise<unknown> => {
          for (const socket of state.sockets) socket.destroy();
          return new Promise((resolve) => server.close(resolve));
        };
        // Its handshakes over (`connections`), and its connections closed (`closed`).
        const state = { port: (server.address() as AddressInfo).port, connections: 0, closed: 0, sockets: new Set<Socket>(), close };
        return state;
      };
      const resetting = await tlsServer((raw) => raw.resetAndDestroy(), secureContext);
      const silent = await tlsServer(() => undefined, secureContext);
      let target = tls12ClientCertificates.port;
      const proxied = new Set<Socket>();
      const proxy = createServer((from) => {
        const to = connect(target, '127.0.0.1');
        for (const [one, other] of [[from, to], [to, from]] as const) {
          proxied.add(one);
          // A reset passed on as one (the service sees ECONNRESET, as from Redis itself).
          one.on('error', () => other.resetAndDestroy());
          one.on('close', () => {
            proxied.delete(one);
            other.destroy();
          });
          one.pipe(other);
        }
      });
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
      const url = `rediss://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const cut = (): void => {
        for (const socket of proxied) socket.destroy();
      };
      try {
        const server = servers.start(env(url, { ...clientCertificate(ca), REDIS_TLS_CA: ca.caFile }));
        const readyz = await server.url('/readyz');
        const read = async (): Promise<unknown> => {
          const res = await fetch(readyz);
          return [res.status, await res.json()];
        };
        expect(await read()).toEqual([200, { status: 'ready' }]);
        const refusal = [503, { status: 'store_unavailable', details: { store: `Redis at ${url} refused the client certificate of REDIS_TLS_CERT (TLS alert unknown ca: not signed by a CA it trusts); give REDIS_TLS_CERT and REDIS_TLS_KEY a certificate and key signed by a CA in its tls-ca-cert-file; reconnecting` } }];

        target = refusing.port;
        cut();
        await eventually(async () => (JSON.stringify(await read()) === JSON.stringify(refusal) ? true : undefined), '/readyz to tell the refusal', 15_000);

        // Each attempt (of the client and of the delivery queue's reader, one at a time each) reset
        // after the handshake: /readyz read as each of eight handshakes is over (the connection taken,
        // not answered yet) and as each is reset.
        target = resetting.port;
        const seen: unknown[] = [];
        for (let after = resetting.connections + 1; seen.length < 16; after += 1) {
          await eventually(() => (resetting.connections >= after ? true : undefined), `attempt ${after} taken`, 15_000);
          seen.push(await read());
          await eventually(() => (resetting.closed >= after ? true : undefined), `attempt ${after} reset`, 15_000);
          seen.push(await read());
        }
        expect(seen).toEqual(Array.from({ length: 16 }, () => refusal));

        // Handshakes unanswered: both connections (the client's and the reader's) held open, taken.
        target = silent.port;
        await eventually(() => (silent.sockets.size >= 2 && silent.connections >= 2 ? true : undefined), 'both connections taken, unanswered', 15_000);
        // The refusal while the handshake is fresh, then (SILENT_AFTER_MS, 2 s, on) a Redis that
        // answers nothing: read until it says so, every read before it the refusal. Within 8 s: kept
        // for good, the refusal gave way only at the handshake's command time-out (10 s), to "is
        // unreachable (Command timed out)" (or, a run in two, to the silence just after it).
        const silence = [503, { status: 'store_unavailable', details: { store: `Redis at ${url} took the connection and has not answered yet` } }];
        const held: unknown[] = [];
        await eventually(async () => {
          held.push(await read());
          return JSON.stringify(held.at(-1)) === JSON.stringify(refusal) ? undefined : true;
        }, '/readyz to tell the silence', 8_000);
        expect(held).toEqual([...Array.from({ length: held.length - 1 }, () => refusal), silence]);

        // Nothing listening: the refusal is no longer the truth.
        const closed = new Promise((resolve) => proxy.close(resolve));
        cut();
        await closed;
        await silent.close();
        const down = await eventually(async () => {
          const answer = await read();
          return JSON.stringify(answer).includes('ECONNREFUSED') ? answer : undefined;
        }, '/readyz to tell the connection refused', 15_000);
        expect(down).toEqual([503, { status: 'store_unavailable', details: { store: `Redis at ${url} is unreachable (connect ECONNREFUSED ${url.slice('rediss://'.length)}); reconnecting` } }]);
        expect(server.lines.filter((line) => line.err !== undefined)).toEqual([]);
        expect(server.output).not.toContain(keyLine(ca));
      } finally {
        cut();
        proxy.close();
        await Promise.all([resetting.close(), silent.close(), refusing.stop()]);
      }
    });

    it('a missing file, a key without its certificate, a key of another certificate, a redis:// URL: the start stops with one line naming the setting (and the path), exit 1 as any bad setting, no key in it', async () => {
      const refused: Array<[Record<string, string>, string]> = [
        [{ REDIS_TLS_CERT: '/nonexistent/client.pem', REDIS_TLS_KEY: ca.clientKeyFile }, 'REDIS_TLS_CERT: cannot read /nonexistent/client.pem (ENOENT)'],
        [{ REDIS_TLS_KEY: ca.clientKeyFile }, 'REDIS_TLS_KEY is set without REDIS_TLS_CERT: the client certificate (REDIS_TLS_CERT) and its private key (REDIS_TLS_KEY) go together; set both or neither'],
        [
          { REDIS_TLS_CERT: ca.clientCertFile, REDIS_TLS_KEY: otherCa.clientKeyFile },
          `REDIS_TLS_KEY: ${otherCa.clientKeyFile} is not the private key of the certificate in REDIS_TLS_CERT (${ca.clientCertFile}); give the key the certificate was made for`,
        ],
      ];
      // Started together: each stops before it reads the rest of the service.
      const runs = await Promise.all([
        ...refused.map(([settings]) => runToExit(env(withPassword(tlsClientCertificates.url), settings), 30_000)),
        runToExit(env(withPassword(plain.url), clientCertificate(ca)), 30_000),
      ]);
      expect(runs.map((run) => [run.code, run.stdout, run.stderr])).toEqual([
        ...refused.map(([, problem]) => [1, '', `Invalid configuration: ${problem}\n`]),
        [1, '', 'Invalid configuration: REDIS_TLS_CERT, REDIS_TLS_KEY are for TLS and need a rediss:// REDIS_URL (redis:// connects without TLS and would not use them)\n'],
      ]);
      const output = runs.map((run) => run.stderr).join('');
      for (const secret of [keyLine(ca), keyLine(otherCa), PASSWORD]) expect(output).not.toContain(secret);
    });
  });
}
