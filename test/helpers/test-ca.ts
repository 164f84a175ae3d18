import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway certificate authority and a server certificate it signed for 127.0.0.1 (an IP SAN:
 * Node checks the address against it), made with `openssl` in a temporary directory, for a TLS
 * server under test (a redis-server with `tls`, test/helpers/redis-server.ts).
 */

export const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).error === undefined;

export interface TestCa {
  /** The CA's certificate (PEM): what a client trusts, e.g. through NODE_EXTRA_CA_CERTS. */
  caFile: string;
  /** The server's certificate and key (PEM), for 127.0.0.1. */
  certFile: string;
  keyFile: string;
  /** Removes the directory. */
  remove(): void;
}

export function makeTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'paysim-ca-'));
  const at = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    writeFileSync(at('server.ext'), 'subjectAltName = IP:127.0.0.1\n');
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=paysim test CA', '-keyout', at('ca.key'), '-out', at('ca.pem'));
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', at('server.key'), '-out', at('server.csr'));
    openssl('x509', '-req', '-in', at('server.csr'), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', at('server.ext'), '-out', at('server.pem'));
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return { caFile: at('ca.pem'), certFile: at('server.pem'), keyFile: at('server.key'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
