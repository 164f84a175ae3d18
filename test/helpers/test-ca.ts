import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throwaway certificate authority, a server certificate it signed for 127.0.0.1 (an IP SAN:
 * Node checks the address against it) and a client certificate it signed, made with `openssl` in
 * a temporary directory, for a TLS server under test (a redis-server with `tls`,
 * test/helpers/redis-server.ts) and a client it asks for a certificate.
 */

export const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).error === undefined;

export interface TestCa {
  /** The CA's certificate (PEM): what a client trusts, e.g. through NODE_EXTRA_CA_CERTS. */
  caFile: string;
  /** The server's certificate and key (PEM), for 127.0.0.1. */
  certFile: string;
  keyFile: string;
  /** A client's certificate and key (PEM), for a server that asks for one (Redis' `tls-auth-clients yes`). */
  clientCertFile: string;
  clientKeyFile: string;
  /** A certificate of the client's key for servers only (extendedKeyUsage serverAuth), which a server asking for a client certificate refuses. */
  serverOnlyClientCertFile: string;
  /** Removes the directory. */
  remove(): void;
}

export function makeTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'paysim-ca-'));
  const at = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    writeFileSync(at('server.ext'), 'subjectAltName = IP:127.0.0.1\n');
    writeFileSync(at('client.ext'), 'extendedKeyUsage = clientAuth\n');
    writeFileSync(at('server-only.ext'), 'extendedKeyUsage = serverAuth\n');
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=paysim test CA', '-keyout', at('ca.key'), '-out', at('ca.pem'));
    for (const name of ['server', 'client']) {
      openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', name === 'server' ? '/CN=127.0.0.1' : '/CN=paysim test client', '-keyout', at(`${name}.key`), '-out', at(`${name}.csr`));
      openssl('x509', '-req', '-in', at(`${name}.csr`), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', at(`${name}.ext`), '-out', at(`${name}.pem`));
    }
    openssl('x509', '-req', '-in', at('client.csr'), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', at('server-only.ext'), '-out', at('client-server-only.pem'));
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    caFile: at('ca.pem'),
    certFile: at('server.pem'),
    keyFile: at('server.key'),
    clientCertFile: at('client.pem'),
    clientKeyFile: at('client.key'),
    serverOnlyClientCertFile: at('client-server-only.pem'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
