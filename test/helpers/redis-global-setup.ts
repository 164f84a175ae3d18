import type { TestProject } from 'vitest/node';
import { hasRedisServer, REDIS_SERVER_MISSING, startRedisServer } from './redis-server.ts';

/**
 * vitest's global setup for `PAYSIM_TEST_STORE=redis` (`make test-redis`): one private
 * redis-server for the whole run, started before the first test file and stopped after the last;
 * its URL is provided to every test file (`inject('paysimRedisUrl')`), where buildTestApp gives
 * each app STORE=redis on a key prefix of its own. Without the variable (or with `memory`) it
 * starts nothing and the apps keep the memory back end.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    /** The run's redis-server when PAYSIM_TEST_STORE=redis; '' otherwise. */
    paysimRedisUrl: string;
  }
}

export const TEST_STORES = ['memory', 'redis'] as const;

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const store = process.env.PAYSIM_TEST_STORE ?? '';
  if (store !== '' && !(TEST_STORES as readonly string[]).includes(store)) {
    throw new Error(`PAYSIM_TEST_STORE must be one of ${TEST_STORES.join(', ')} (got ${JSON.stringify(store)})`);
  }
  if (store !== 'redis') {
    project.provide('paysimRedisUrl', '');
    return undefined;
  }
  // Asked for explicitly: a missing binary fails the run rather than quietly testing memory.
  if (!hasRedisServer) throw new Error(REDIS_SERVER_MISSING.replace('and CI is set', 'and PAYSIM_TEST_STORE=redis is set'));
  const server = await startRedisServer();
  project.provide('paysimRedisUrl', server.url);
  return () => server.stop();
}
