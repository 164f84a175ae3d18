import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { MIN_NODE_VERSION, nodeVersionProblem } from '../../src/node-version.ts';

describe('the Node.js version check run first at start (src/node-version.ts)', () => {
  it('refuses a Node older than package.json engines.node on one line that says what to do, and takes that one and newer', () => {
    const engines = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } }).engines.node;
    expect(engines).toBe(`>=${MIN_NODE_VERSION.replace(/\.0$/, '')}`);
    expect(nodeVersionProblem('20.20.2')).toBe(
      'Could not start: paysim needs Node.js 22.19.0 or later, and this is 20.20.2; run it with `make run` or `scripts/with-node.sh npm start` (both fetch Node 24), or install a newer Node',
    );
    for (const old of ['18.19.0', '22.18.9', '22.9.0', '21.99.99', '22.18.0']) expect([old, nodeVersionProblem(old) === undefined]).toEqual([old, false]);
    for (const fine of ['22.19.0', '22.19.1', '22.20.0', '23.0.0', '24.11.1', '25.0.0', process.versions.node]) expect([fine, nodeVersionProblem(fine)]).toEqual([fine, undefined]);
  });
});
