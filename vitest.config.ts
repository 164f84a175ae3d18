import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

/**
 * The test files that start processes of their own: the service as a child process (or several,
 * with node:cluster or as replicas), redis-servers they stop and kill, Chromium, newman, tsc. Each
 * one keeps both cores of a CI machine busy by itself, and their kill, drain and shutdown tests
 * are about timing, so they run one at a time, after the others. Every other file builds the app
 * in its own process and runs two at a time.
 */
export const PROCESS_TEST_FILES = [
  'test/browser/console.test.ts',
  'test/browser/cors.test.ts',
  ...[
    'balancer-restart',
    'cluster',
    'connections',
    'dist-start',
    'dockerfile',
    'env-file',
    'mint-token',
    'newman',
    'process',
    'process-start',
    'redis-replicas',
    'redis-replicas-load',
    'redis-tls',
    'swagger-ui',
    'tracing',
    'webhooks-shutdown',
  ].map((name) => `test/integration/${name}.test.ts`),
];

/**
 * The files that count objects in their heap (v8.queryObjects): in the shared in-process workers,
 * another file's leftovers (a timer of an app it built) could make or free such objects between two
 * counts, and each count's full GC walks every file's heap. Each runs in a fork of its own.
 */
export const OWN_HEAP_TEST_FILES = ['test/adapters/memory-indexes.test.ts'];

export default defineConfig({
  test: {
    environment: 'node',
    pool: 'forks',
    // Starts a redis-server for the run only when PAYSIM_TEST_STORE=redis (`make test-redis`).
    globalSetup: ['test/helpers/redis-global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    reporters: ['default'],
    // Each project names its files (an include set here would be added to each project's own).
    projects: [
      // At least two files at a time (vitest's default leaves one core free, which on a 2-core CI
      // machine is one file at a time); the process files wait until these are done.
      { extends: true, test: { name: 'in-process', include: ['test/**/*.test.ts'], exclude: [...PROCESS_TEST_FILES, ...OWN_HEAP_TEST_FILES], isolate: false, maxWorkers: Math.max(2, availableParallelism() - 1), sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'own-heap', include: OWN_HEAP_TEST_FILES, isolate: true, maxWorkers: 1, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'processes', include: PROCESS_TEST_FILES, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    ],
    coverage: {
      provider: 'v8',
      include: ['src/**'],
      reporter: ['text', 'html', 'lcov'],
      reportsDirectory: 'coverage',
    },
  },
});
