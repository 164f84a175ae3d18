import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { stripVTControlCharacters } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { runToExit, serverProcesses } from '../helpers/child.ts';

/**
 * The process when its start fails for a reason other than its configuration (the port is taken,
 * HOST is not an address here), and with LOG_FORMAT=pretty: `node src/server.ts` in a child.
 * @see issue 8 "Logs people can read"
 */

const SECRET = 'whsec_cHJvY2Vzcy10ZXN0LXNlY3JldC0xMjM0NQ==';

/** With net.ipv4.ip_nonlocal_bind on, Linux lets a process bind any address: EADDRNOTAVAIL cannot happen. */
const nonLocalBind = (() => {
  try {
    return readFileSync('/proc/sys/net/ipv4/ip_nonlocal_bind', 'utf8').trim() === '1';
  } catch {
    return false;
  }
})();

const servers = serverProcesses();
let blocker: Server | undefined;
afterEach(async () => {
  await servers.killAll();
  await new Promise<void>((resolve) => (blocker === undefined ? resolve() : blocker.close(() => resolve())));
  blocker = undefined;
});

/** Exactly one line on stderr, nothing like a log record or a stack anywhere. */
function expectOneLine(run: { code: number | null; stdout: string; stderr: string }): string {
  expect(run.code).toBe(1);
  const lines = run.stderr.split('\n').filter((line) => line !== '');
  expect(lines, run.stderr).toHaveLength(1);
  expect(run.stderr.endsWith('\n')).toBe(true);
  expect(run.stdout).toBe('');
  expect(run.stderr).not.toMatch(/"level"|fatal|\n\s+at /);
  return lines[0] as string;
}

describe('start-up failures that are not configuration errors: exit 1 with one line on stderr', () => {
  it('the port is in use (EADDRINUSE)', async () => {
    const server = createServer();
    blocker = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const { port } = server.address() as { port: number };
    const line = expectOneLine(await runToExit({ WEBHOOK_SECRET: SECRET, HOST: '127.0.0.1', PORT: String(port) }));
    expect(line).toBe(`Could not start: 127.0.0.1:${port} is already in use (EADDRINUSE); stop what listens there or set PORT to a free port`);
  });

  it('HOST=999.1.1.1, neither an address nor a name (ENOTFOUND)', async () => {
    const line = expectOneLine(await runToExit({ WEBHOOK_SECRET: SECRET, HOST: '999.1.1.1' }));
    expect(line).toMatch(/^Could not start: HOST 999\.1\.1\.1 is neither an IP address nor a name that resolves \((ENOTFOUND|EAI_AGAIN|EAI_FAIL|EAI_NONAME)\); set HOST to /);
  });

  it.skipIf(nonLocalBind)('HOST that is no address of this machine (EADDRNOTAVAIL)', async () => {
    // TEST-NET-1 (RFC 5737): never assigned to a local interface.
    const line = expectOneLine(await runToExit({ WEBHOOK_SECRET: SECRET, HOST: '192.0.2.1' }));
    expect(line).toBe('Could not start: HOST 192.0.2.1 is not an address of this machine (EADDRNOTAVAIL); set HOST to one of its addresses, or 0.0.0.0 for all');
  });
});

describe('LOG_FORMAT=pretty', () => {
  it('prints human-readable lines, not JSON, and still redacts', async () => {
    const server = servers.start({ LOG_FORMAT: 'pretty', WEBHOOK_SECRET: SECRET });
    const text = () => stripVTControlCharacters(server.stdout);
    const listening = await new Promise<string>((resolve, reject) => {
      const started = Date.now();
      const poll = setInterval(() => {
        const match = /INFO: Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(text());
        if (match?.[1] !== undefined || server.exit !== undefined || Date.now() - started > 10_000) {
          clearInterval(poll);
          if (match?.[1] !== undefined) resolve(match[1]);
          else reject(new Error(`no listening line\n${server.output}`));
        }
      }, 10);
    });
    const res = await fetch(`${listening}/healthz`, { headers: { authorization: 'Bearer s3cr3t-token', 'x-request-id': 'pretty-1' } });
    expect(res.status).toBe(200);
    server.kill('SIGTERM');
    expect(await server.waitForExit(10_000)).toEqual({ code: 0, signal: null });

    const lines = text().split('\n').filter((line) => line !== '');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    for (const line of lines) {
      expect(line).toMatch(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): /);
      expect(() => JSON.parse(line)).toThrow();
    }
    expect(lines.find((line) => line.includes('"request_id":"pretty-1"'))).toMatch(/\] INFO: request completed \{.*"status_code":200/);
    expect(text()).toContain('INFO: shutdown complete');
    expect(server.stdout).not.toContain('s3cr3t');
    expect(server.stdout).not.toContain(SECRET);
    expect(server.stderr).toBe('');
  });
});
