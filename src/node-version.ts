/**
 * The Node.js this service needs (package.json `engines`): imported first by `server.ts`, so an
 * older Node is told on one stderr line, exit 1, before any module that needs a newer one loads.
 * Before 2026-12-05, `npm start` on Node 20 ended in a stack trace from undici (a user test of the
 * README's `TIME_SCALE=0.01 npm start`). `make run` and `scripts/with-node.sh` fetch Node 24 when
 * the machine's is older.
 */

/** The oldest Node.js release the service runs on (package.json `engines.node`). */
export const MIN_NODE_VERSION = '22.19.0';

/** Why `version` (as `process.versions.node` gives it) cannot run the service; undefined when it can. */
export function nodeVersionProblem(version: string): string | undefined {
  const have = version.split('.').map((part) => Number.parseInt(part, 10));
  const need = MIN_NODE_VERSION.split('.').map(Number);
  for (let i = 0; i < need.length; i++) {
    const a = have[i] ?? 0;
    const b = need[i] as number;
    if (Number.isNaN(a) || a < b) break;
    if (a > b || i === need.length - 1) return undefined;
  }
  return `Could not start: paysim needs Node.js ${MIN_NODE_VERSION} or later, and this is ${version}; run it with \`make run\` or \`scripts/with-node.sh npm start\` (both fetch Node 24), or install a newer Node`;
}

const problem = nodeVersionProblem(process.versions.node);
if (problem !== undefined) {
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}
