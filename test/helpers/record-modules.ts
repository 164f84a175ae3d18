import cluster from 'node:cluster';
import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

/**
 * Loaded with `--import` (NODE_OPTIONS) into a child process: at its exit, a cluster's primary (or a
 * single process) writes every module it loaded, one URL a line, to LOADED_MODULES_FILE. Workers
 * inherit NODE_OPTIONS and load this too, but write nothing.
 */
const loaded: string[] = [];
registerHooks({
  load(url, context, nextLoad) {
    loaded.push(url);
    return nextLoad(url, context);
  },
});
process.on('exit', () => {
  const file = process.env.LOADED_MODULES_FILE;
  if (cluster.isPrimary && file !== undefined) writeFileSync(file, `${loaded.join('\n')}\n`);
});
