import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { stringify } from 'yaml';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';

/**
 * Renders the OpenAPI document from the routes' schemas and writes it to `openapi/payment-sim.yaml`
 * (`npm run openapi` / `make openapi`). The committed file is checked against a fresh rendering by
 * test/integration/openapi.test.ts, so a schema change without a regenerated document fails CI.
 */

export const OPENAPI_PATH = resolve(import.meta.dirname, '..', 'openapi', 'payment-sim.yaml');

/** The OpenAPI document as YAML, exactly as `make openapi` writes it. */
export async function renderOpenApiYaml(): Promise<string> {
  // A fixed secret: the document does not depend on it, and a generated one would only add a warning.
  const app = await buildApp({ config: loadConfig({ WEBHOOK_SECRET: 'openapi-generation-only' }), logger: false });
  try {
    await app.ready();
    // Written for YAML 1.1 readers too (PyYAML, SnakeYAML): a string that 1.1 would read as
    // another type (a date-time, yes/no, on/off) is quoted; a 1.2 reader gets the same document.
    return stringify(app.swagger(), { strict: false, version: '1.1' });
  } finally {
    await app.close();
  }
}

async function main(): Promise<void> {
  const yaml = await renderOpenApiYaml();
  await mkdir(dirname(OPENAPI_PATH), { recursive: true });
  await writeFile(OPENAPI_PATH, yaml);
  const { parse } = await import('yaml');
  const paths = Object.keys((parse(yaml) as { paths?: Record<string, unknown> }).paths ?? {}).length;
  process.stdout.write(`wrote ${relative(process.cwd(), OPENAPI_PATH) || OPENAPI_PATH} (${paths} paths)\n`);
}

if (import.meta.main) await main();
