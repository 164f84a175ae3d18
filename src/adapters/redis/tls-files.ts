import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, getCACertificates, type SecureContext } from 'node:tls';

/**
 * The files of a TLS connection to Redis beyond `rediss://` itself: a client certificate and its
 * key, for a Redis that asks for one (`tls-auth-clients yes`), and CA certificates trusted for
 * Redis' certificate besides Node's own. Read and checked once, at the start, so that a missing
 * file, a file that is not PEM or a key of another certificate stops it on one line, instead of
 * each reconnect failing with OpenSSL's words. No line ever holds a file's contents: the key is
 * a secret, and the others say nothing a path would not.
 * @see https://redis.io/docs/latest/operate/oss_and_stack/management/security/encryption/
 */

/** The paths as given: REDIS_TLS_CERT, REDIS_TLS_KEY, REDIS_TLS_CA. */
export interface RedisTlsPaths {
  cert?: string;
  key?: string;
  ca?: string;
}

/** Their PEM text, as Node's `createSecureContext` takes it (`redisTls`). */
export interface RedisTlsFiles {
  cert?: string;
  key?: string;
  /** Node's CAs and REDIS_TLS_CA's: `ca` replaces Node's list, so its own are given with it. */
  ca?: string[];
}

/**
 * What the Redis client is given (`RedisConnectionOptions.tls`): one TLS context made of the files
 * at the start, which every connection and reconnect reuses, and whether it holds a client
 * certificate. Not the files' text: Node makes a context of `ca`, `cert` and `key` at each
 * `tls.connect`, and with Node's own CAs in `ca` (about 120, or several hundred with
 * NODE_EXTRA_CA_CERTS or --use-system-ca) that took 30-100 ms of the event loop per connection,
 * each 200 ms while Redis was away (a review: a replica used 21 % of a core during an outage, 4 %
 * without REDIS_TLS_CA). Nor does the key's text stay in the configuration.
 */
export interface RedisTls {
  secureContext: SecureContext;
  clientCertificate: boolean;
}

/** The client's TLS of `files` (read by readRedisTlsFiles): its context, made once. */
export function redisTls(files: RedisTlsFiles): RedisTls {
  return { secureContext: createSecureContext(files), clientCertificate: files.cert !== undefined };
}

/** A file that cannot be used, in words that name its setting and path. */
export class RedisTlsFileError extends Error {
  override name = 'RedisTlsFileError';
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Reads and checks the files of `paths`; rejects with RedisTlsFileError. Undefined when none is set. */
export function readRedisTlsFiles(paths: RedisTlsPaths): RedisTlsFiles | undefined {
  if (paths.cert === undefined && paths.key === undefined && paths.ca === undefined) return undefined;
  if ((paths.cert === undefined) !== (paths.key === undefined)) {
    const [given, missing] = paths.cert === undefined ? ['REDIS_TLS_KEY', 'REDIS_TLS_CERT'] : ['REDIS_TLS_CERT', 'REDIS_TLS_KEY'];
    throw new RedisTlsFileError(`${given} is set without ${missing}: the client certificate (REDIS_TLS_CERT) and its private key (REDIS_TLS_KEY) go together; set both or neither`);
  }
  const files: RedisTlsFiles = {};
  if (paths.cert !== undefined && paths.key !== undefined) {
    const cert = readText('REDIS_TLS_CERT', paths.cert);
    const certificates = certificatesOf('REDIS_TLS_CERT', paths.cert, cert);
    const key = readText('REDIS_TLS_KEY', paths.key);
    const privateKey = privateKeyOf(paths.key, key);
    // The first certificate is the client's own; any after it are intermediates sent along.
    if (!certificates[0]?.checkPrivateKey(privateKey)) {
      throw new RedisTlsFileError(`REDIS_TLS_KEY: ${paths.key} is not the private key of the certificate in REDIS_TLS_CERT (${paths.cert}); give the key the certificate was made for`);
    }
    files.cert = cert;
    files.key = key;
  }
  if (paths.ca !== undefined) {
    const text = readText('REDIS_TLS_CA', paths.ca);
    certificatesOf('REDIS_TLS_CA', paths.ca, text);
    // 'default': Node's bundled CAs with NODE_EXTRA_CA_CERTS' (and the system's under --use-system-ca).
    files.ca = [...getCACertificates('default'), ...(text.match(PEM_CERTIFICATE) ?? [])];
  }
  return files;
}

function readText(name: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new RedisTlsFileError(`${name}: cannot read ${path} (${code})`, { cause: error });
  }
}

/** Every certificate of a PEM file, at least one; X509Certificate reads the first of a text only. */
function certificatesOf(name: string, path: string, text: string): X509Certificate[] {
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  try {
    if (blocks.length === 0) throw new Error('no PEM certificate');
    return blocks.map((block) => new X509Certificate(block));
  } catch {
    // Not the parser's words: they could quote the file.
    throw new RedisTlsFileError(`${name}: ${path} is not a PEM file of certificates (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----)`);
  }
}

function privateKeyOf(path: string, text: string): KeyObject {
  try {
    return createPrivateKey(text);
  } catch {
    // Never the parser's words: they could quote the key.
    throw new RedisTlsFileError(`REDIS_TLS_KEY: ${path} is not an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----, or of RSA or EC; a key with a passphrase is not supported)`);
  }
}
