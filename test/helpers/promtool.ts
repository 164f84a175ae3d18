import { spawn, spawnSync } from 'node:child_process';

/**
 * Prometheus's own linter, `promtool check metrics`, from the Debian package `prometheus`
 * (`apt-get install -y --no-install-recommends prometheus`). Tests that use it are skipped
 * without it locally, and fail in CI (CI set) rather than pass unseen.
 */

export const hasPromtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).error === undefined;
export const inCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
export const PROMTOOL_MISSING =
  'promtool is not on PATH and CI is set: install it with `apt-get install -y --no-install-recommends prometheus` (Debian package prometheus, /usr/bin/promtool)';

/** promtool's verdict on a /metrics body: exit code and everything it printed (nothing when it is happy). */
export function promtoolCheckMetrics(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}
