import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

/**
 * Writes the Postman collection `postman/paysim.postman_collection.json` from the OpenAPI document
 * (`make postman`), with @apideck/portman (openapi-to-postmanv2 inside) and its configuration in
 * postman/: `portman-config.json` (contract, content, variation and integration tests, chained ids,
 * auth, request order) and `postman-config.json` (the converter's options: folders by tag, request
 * data from the document's examples).
 *
 * Local only, and deterministic: portman runs in a child process in a scratch directory (it writes
 * ./tmp there) with a clean environment (it would copy PORTMAN_* variables into the collection), and
 * the ids it makes up at random are taken out. The committed file is checked against a fresh
 * build by test/integration/newman.test.ts, which also runs it with newman against the service.
 */

const REPO = resolve(import.meta.dirname, '..');
export const OPENAPI_PATH = resolve(REPO, 'openapi', 'payment-sim.yaml');
export const PORTMAN_CONFIG_PATH = resolve(REPO, 'postman', 'portman-config.json');
export const CONVERTER_CONFIG_PATH = resolve(REPO, 'postman', 'postman-config.json');
export const COLLECTION_PATH = resolve(REPO, 'postman', 'paysim.postman_collection.json');

/** A fixed collection id, so that importing a newer file into Postman offers to replace the old one. */
const COLLECTION_ID = uuidFrom('paysim postman collection');

/** The collection exactly as `make postman` writes it (JSON, two-space indented, with a final newline). */
export async function buildCollection(): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'paysim-postman-'));
  try {
    const output = join(work, 'collection.json');
    await runPortman(work, [
      '--local', OPENAPI_PATH,
      '--portmanConfigFile', PORTMAN_CONFIG_PATH,
      '--postmanConfigFile', CONVERTER_CONFIG_PATH,
      '--output', output,
      '--includeTests=true',
      '--logAssignVariables=false',
    ]);
    const collection = JSON.parse(await readFile(output, 'utf8')) as Record<string, unknown>;
    return `${JSON.stringify(normalize(collection), null, 2)}\n`;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Runs the portman CLI in `cwd`; fails with its output when it fails or reports targets of the config that the document lacks. */
async function runPortman(cwd: string, args: string[]): Promise<void> {
  const bin = createRequire(import.meta.url).resolve('@apideck/portman/bin/portman');
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1', FORCE_COLOR: '0' };
  const child = spawn(process.execPath, ['--no-deprecation', bin, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const code = await new Promise<number | null>((done, fail) => {
    child.on('error', fail);
    child.on('close', done);
  });
  if (code !== 0) throw new Error(`portman exited with ${String(code)}:\n${out}`);
  // A target of the config (an operationId, METHOD::/path) that is not in the document is only a warning to portman.
  if (/targets are missing/i.test(out)) throw new Error(`portman reported a problem with postman/portman-config.json:\n${out}`);
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * Takes out what portman makes up at random on every run (item, script and collection ids, the
 * `_` bookkeeping) and writes each script line as its own array element, as Postman exports them.
 */
function normalize(collection: Record<string, unknown>): Json {
  const { _: _bookkeeping, info, ...rest } = collection;
  const strip = (value: Json): Json => {
    if (Array.isArray(value)) return value.map(strip);
    if (value === null || typeof value !== 'object') return value;
    const out: Record<string, Json> = {};
    for (const [key, child] of Object.entries(value)) {
      if (key === 'id' && ('request' in value || 'item' in value || 'exec' in value || 'listen' in value)) continue;
      out[key] = key === 'exec' && Array.isArray(child) ? child.flatMap((line): Json[] => (typeof line === 'string' ? line.split('\n') : [line])) : strip(child);
    }
    return out;
  };
  return { info: { ...(info as Record<string, Json>), _postman_id: COLLECTION_ID }, ...(strip(rest as Json) as Record<string, Json>) };
}

/** A UUID (version 5 layout) derived from `name`. */
function uuidFrom(name: string): string {
  const hex = createHash('sha1').update(name).digest('hex');
  const variant = ((parseInt(hex.slice(16, 18), 16) & 0x3f) | 0x80).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(18, 20)}-${hex.slice(20, 32)}`;
}

/** Counts the requests of a collection (items with a request, in folders at any depth). */
export function countRequests(items: readonly unknown[]): number {
  let count = 0;
  for (const item of items as { item?: unknown[]; request?: unknown }[]) count += item.item !== undefined ? countRequests(item.item) : item.request !== undefined ? 1 : 0;
  return count;
}

async function main(): Promise<void> {
  const text = await buildCollection();
  await writeFile(COLLECTION_PATH, text);
  const { item } = JSON.parse(text) as { item: unknown[] };
  process.stdout.write(`wrote ${relative(process.cwd(), COLLECTION_PATH) || COLLECTION_PATH} (${countRequests(item)} requests)\n`);
}

if (import.meta.main) await main();
