import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { join } from 'node:path';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { ENV_VARIABLES, loadConfig } from '../../src/config.ts';
import { QUIESCE_WAIT_MS } from '../../src/plugins/app/core.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { REPO } from '../helpers/child.ts';
import { exportedSeries, queryNames, seriesSelectors } from '../helpers/promql.ts';
import { hasPromtool, inCi, PROMTOOL_MISSING } from '../helpers/promtool.ts';
import { closedPort, eventually, startReceiver, type Receiver } from '../helpers/receiver.ts';
import { hasRedisServer, REDIS_SERVER_MISSING, startRedis } from '../helpers/redis.ts';
import { afterAttempts, createIntent, deliveryWhen } from '../helpers/webhooks.ts';

/**
 * The deployment files, checked without a container engine (there is none here or in CI):
 * docker-compose.yml and deploy/compose/ (HAProxy, Prometheus, Grafana), deploy/kubernetes/.
 * Prometheus's config goes through `promtool check config` and HAProxy's through `haproxy -c`
 * (both Debian packages installed by .ci/run: skipped locally without them, failing under CI),
 * and the dashboard's queries through `promtool check rules`; every series and label the dashboard and the alerts query must be in a real /metrics; every
 * variable the files set must be one src/config.ts reads, and their values must pass it.
 * The Kubernetes manifests are checked against the Kubernetes API's types (kubernetes-models: its
 * TypeScript interfaces, so that a field the API does not have is found as `kubectl apply`'s strict
 * field validation would, and its JSON-schema validators). The Compose file is checked for its
 * structure and its references here rather than against the Compose Specification's JSON
 * schema: no maintained npm package ships that schema.
 * @see issue 14 "Running several processes"
 */

const read = (file: string): string => readFileSync(join(REPO, file), 'utf8');
const yamlFile = <T>(file: string): T => parse(read(file), { merge: true }) as T;

const SERVICE_VARIABLES = new Set(ENV_VARIABLES);

// ---------------------------------------------------------------- Compose

interface Healthcheck {
  test: string[];
}
interface ComposeService {
  build?: string;
  image: string;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: Healthcheck;
  command?: string[];
  ports?: string[];
  volumes?: string[];
  stop_grace_period?: string;
}
interface Compose {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const COMPOSE = yamlFile<Compose>('docker-compose.yml');
const SERVICES = COMPOSE.services;
/** The paysim replicas: the services built from the repository's Dockerfile. */
const REPLICAS = Object.keys(SERVICES).filter((name) => SERVICES[name]?.build === '.');

/** `${NAME:-default}` as Compose reads it when NAME is unset (the tests' case): the default. */
function interpolated(value: string): string {
  const out = value.replace(/\$\{([A-Z_][A-Z0-9_]*):-([^}]*)\}/g, (_all, _name: string, fallback: string) => fallback);
  expect(out, `only \${NAME:-default} is used in ${value}`).not.toContain('$');
  return out;
}
const replicaEnv = (name: string): Record<string, string> =>
  Object.fromEntries(Object.entries(SERVICES[name]?.environment ?? {}).map(([key, value]) => [key, interpolated(String(value))]));

/** `./deploy/…:/in/container:ro` → [host path, container path]; a named volume has no `./`. */
function mounts(service: ComposeService): Array<{ source: string; target: string; bind: boolean }> {
  return (service.volumes ?? []).map((spec) => {
    const [source = '', target = ''] = spec.split(':');
    return { source, target, bind: source.startsWith('./') };
  });
}

/** The file a service mounts at `target` (a bind mount of the repository). */
function mountedFile(service: string, target: string): string {
  const mount = mounts(SERVICES[service] as ComposeService).find((m) => m.bind && m.target === target);
  expect(mount, `${service} mounts a file at ${target}`).toBeDefined();
  return (mount?.source ?? '').replace(/^\.\//, '');
}

const PROMETHEUS_FILE = mountedFile('prometheus', '/etc/prometheus/prometheus.yml');
const HAPROXY_FILE = mountedFile('balancer', '/usr/local/etc/haproxy/haproxy.cfg');

interface PrometheusConfig {
  rule_files?: string[];
  scrape_configs: Array<{ job_name: string; metrics_path?: string; static_configs: Array<{ targets: string[]; labels?: Record<string, string> }> }>;
}
const PROMETHEUS = yamlFile<PrometheusConfig>(PROMETHEUS_FILE);
const RULE_FILES = (PROMETHEUS.rule_files ?? []).map((file) => join(PROMETHEUS_FILE, '..', file));
const ALERT_EXPRS = RULE_FILES.flatMap((file) => yamlFile<{ groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }> }>(file).groups.flatMap((g) => g.rules.map((r) => ({ name: `${file}: ${r.alert ?? r.record}`, expr: r.expr }))));

interface Dashboard {
  uid: string;
  templating: { list: Array<Record<string, unknown>> };
  panels: Array<{ type: string; title: string; datasource?: { uid: string }; targets?: Array<{ expr: string; datasource?: { uid: string } }> }>;
}
const DASHBOARD_DIR = mountedFile('grafana', '/etc/grafana/dashboards');
const DASHBOARD = JSON.parse(read(join(DASHBOARD_DIR, 'paysim.json'))) as Dashboard;
const DASHBOARD_EXPRS = DASHBOARD.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ name: `dashboard "${p.title}"`, expr: t.expr })));
const GRAFANA_PROVISIONING = mountedFile('grafana', '/etc/grafana/provisioning');

interface PanelDetail {
  title: string;
  targets: Array<{ refId: string; expr: string }>;
  fieldConfig: {
    defaults: { max?: number; thresholds?: { steps: Array<{ color: string; value: number | null }> }; custom?: { stacking?: { mode: string }; axisSoftMax?: number } };
    overrides: Array<{ matcher: { id: string; options: string }; properties: Array<{ id: string; value: unknown }> }>;
  };
}
/** The dashboard's panel titled `title`, with its field configuration. */
function panel(title: string): PanelDetail {
  const found = (DASHBOARD.panels as unknown as PanelDetail[]).filter((p) => p.title === title);
  expect(found, `one panel "${title}"`).toHaveLength(1);
  return found[0] as PanelDetail;
}
/** A panel's queries drawn stacked: the panel stacks, and no override of the query's refId unstacks it. */
function stackedExprs(p: PanelDetail): string[] {
  const unstacked = new Set(
    p.fieldConfig.overrides
      .filter((o) => o.matcher.id === 'byFrameRefID' && o.properties.some((prop) => prop.id === 'custom.stacking' && (prop.value as { mode?: string }).mode === 'none'))
      .map((o) => o.matcher.options),
  );
  return p.fieldConfig.defaults.custom?.stacking?.mode === 'normal' ? p.targets.filter((t) => !unstacked.has(t.refId)).map((t) => t.expr) : [];
}
const LEDGER_TILE = panel('Ledger imbalance');
const V2_STATUS_PANEL = panel('/api/v2 payments by status');

const haproxyLines = read(HAPROXY_FILE)
  .split('\n')
  .map((line) => line.replace(/#.*$/, '').trim())
  .filter((line) => line !== '');
/** HAProxy's sections (`backend replicas` …) and their directives. */
const HAPROXY_SECTIONS = new Map<string, string[]>();
{
  let current = '';
  for (const line of haproxyLines) {
    if (/^(global|defaults|frontend|backend|listen|resolvers)\b/.test(line)) {
      current = line;
      HAPROXY_SECTIONS.set(current, []);
    } else HAPROXY_SECTIONS.get(current)?.push(line);
  }
}
const HAPROXY_BACKENDS = [...HAPROXY_SECTIONS.keys()].filter((s) => s.startsWith('backend '));

// ---------------------------------------------------------------- Kubernetes

interface Container {
  name: string;
  image: string;
  args?: string[];
  ports: Array<{ name: string; containerPort: number }>;
  envFrom?: Array<{ configMapRef?: { name: string } }>;
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  readinessProbe?: { httpGet?: { path: string; port: string | number }; exec?: { command: string[] } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  startupProbe?: { httpGet?: { path: string; port: string | number }; periodSeconds?: number; failureThreshold?: number };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
}
interface PodTemplate {
  metadata: { labels: Record<string, string> };
  spec: { containers: Container[]; terminationGracePeriodSeconds?: number };
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: {
    replicas?: number;
    selector?: { matchLabels?: Record<string, string> } & Record<string, string>;
    template?: PodTemplate;
    ports?: Array<{ name: string; port: number; targetPort: string | number }>;
    volumeClaimTemplates?: Array<{ metadata: { name: string } }>;
    serviceName?: string;
    clusterIP?: string;
  };
}

const K8S_DIR = 'deploy/kubernetes';
const KUSTOMIZATION = yamlFile<{ resources: string[] }>(join(K8S_DIR, 'kustomization.yaml'));
function manifests(file: string): Manifest[] {
  return parseAllDocuments(read(join(K8S_DIR, file))).map((doc) => {
    expect(doc.errors, `${file} parses`).toEqual([]);
    return doc.toJS() as Manifest;
  });
}
const K8S = KUSTOMIZATION.resources.flatMap(manifests);
const SECRET_EXAMPLE = manifests('secret.example.yaml');
/**
 * The kubernetes-models class of each kind the manifests hold; its interface is `I<kind>` in
 * `kubernetes-models/<apiVersion>/<kind>`.
 */
const MODELS: Record<string, new (data: never) => { validate(): void }> = { ConfigMap, Secret, Service, Deployment, StatefulSet };

/** Runs the JSON-schema validator of the manifest's kind (throws what it finds). */
function validateManifest(manifest: Manifest): void {
  const Model = MODELS[manifest.kind];
  if (Model === undefined) throw new Error(`no Kubernetes model known for kind ${manifest.kind}`);
  new Model(manifest as never).validate();
}

/**
 * What the TypeScript compiler says of each manifest written as an object literal of its kind's
 * interface: a field the API does not have (an excess property), a value of another type, a
 * required field missing. One line per error, `Kind/name: message`. The program is made in memory
 * (a virtual file in test/, so `kubernetes-models` resolves from the repository's node_modules).
 */
function kubernetesTypeErrors(list: Manifest[]): string[] {
  const file = join(REPO, 'test', 'kubernetes-manifests.check.ts');
  const starts: Array<{ at: number; label: string }> = [];
  let source = '';
  list.forEach((manifest, index) => {
    if (MODELS[manifest.kind] === undefined) throw new Error(`no Kubernetes type known for kind ${manifest.kind}`);
    starts.push({ at: source.length, label: `${manifest.kind}/${manifest.metadata.name}` });
    source += `import type { I${manifest.kind} as T${index} } from 'kubernetes-models/${manifest.apiVersion}/${manifest.kind}';\nexport const m${index}: T${index} = ${JSON.stringify(manifest, null, 1)};\n`;
  });
  const options: ts.CompilerOptions = { strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, skipLibCheck: true, types: [] };
  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (name) => name === file || fileExists.call(host, name);
  host.readFile = (name) => (name === file ? source : readFile.call(host, name));
  host.getSourceFile = (name, language, ...rest) => (name === file ? ts.createSourceFile(name, source, language) : getSourceFile.call(host, name, language, ...rest));
  return ts.getPreEmitDiagnostics(ts.createProgram([file], options, host)).map((d) => {
    const label = d.file?.fileName === file && d.start !== undefined ? starts.filter((s) => s.at <= (d.start as number)).at(-1)?.label : d.file?.fileName;
    return `${label ?? '(no file)'}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}

function one(kind: string, name?: string): Manifest {
  const found = K8S.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  expect(found.map((m) => `${m.kind}/${m.metadata.name}`), `one ${kind} ${name ?? ''}`).toHaveLength(1);
  return found[0] as Manifest;
}

// ---------------------------------------------------------------- a real service

describe('the service the files describe', () => {
  let t: TestApp;
  let rx: Receiver;
  let metrics: Map<string, Set<string>>;
  beforeAll(async () => {
    rx = await startReceiver();
    // STORE_MAX_INTENTS=1 so that a second pending intent is refused: store_full_total counts one.
    t = await buildTestApp({ STORE_MAX_INTENTS: '1', WEBHOOK_MAX_RPS: '0' });
    const id = await createIntent(t, { scenario: 'approve', webhook_url: rx.url('/hook') });
    await t.clock.advance(10_000);
    await deliveryWhen(t, `?payment_intent_id=${id}`, afterAttempts(1, 'delivered'), 'the webhook delivered');
    await createIntent(t, { scenario: 'delay' });
    const full = await t.app.inject({ method: 'POST', url: '/v1/sim/intent', payload: { reservation_id: 'res_2', amount: 1000, scenario: 'delay' } });
    expect(full.statusCode).toBe(503);
    expect(full.json()).toMatchObject({ error: { code: 'STORE_FULL' } });
    // A FluxPay waiting room with a user admitted: its series (by room) exist from then on.
    const room = await t.app.inject({ method: 'PUT', url: '/api/v1/waiting-rooms/sale', payload: { admitPerSecond: 1, admissionTtlSeconds: 60, protectedServiceIds: [] } });
    expect(room.statusCode).toBe(201);
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/waiting-rooms/sale/enter', payload: { userId: 'u1' } })).statusCode).toBe(200);
    // The delivery's latency is observed once its 2xx is read, which may follow the log's update.
    const body = await eventually(async () => {
      const text = (await t.app.inject({ url: '/metrics' })).body;
      return /^webhook_delivery_latency_seconds_count 1$/m.test(text) ? text : undefined;
    }, 'the delivery latency observed');
    metrics = exportedSeries(body);
    // Series only a Redis app exports (redis_*), from one on a redis-server of its own.
    if (hasRedisServer) {
      const redis = await startRedis();
      try {
        const onRedis = await buildTestApp({ STORE: 'redis', REDIS_URL: redis.url, REDIS_KEY_PREFIX: redis.newPrefix() });
        for (const [name, labels] of exportedSeries((await onRedis.app.inject({ url: '/metrics' })).body)) if (!metrics.has(name)) metrics.set(name, labels);
        await onRedis.app.close();
      } finally {
        await redis.stop();
      }
    }
  });
  afterAll(async () => {
    await rx?.close();
    await t?.app.close();
  });

  /** Labels Prometheus adds to every series it scrapes: job, instance and the static targets' labels. */
  const targetLabels = new Set(['job', 'instance', ...PROMETHEUS.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => Object.keys(s.labels ?? {})))]);

  it.each([...DASHBOARD_EXPRS, ...ALERT_EXPRS])('$name: every series and label it names is exported ($expr)', ({ expr }) => {
    const { series, labels } = queryNames(expr);
    expect(series.size, 'the query names a series').toBeGreaterThan(0);
    const known = new Set(targetLabels);
    for (const name of series) {
      // `up` is Prometheus's own series per target, with the target's labels only.
      if (name === 'up') continue;
      // `ALERTS` is Prometheus's own series of the alerts it evaluates, with their labels and state:
      // each alert it names is one of the rule files'.
      if (name === 'ALERTS') {
        for (const [, alert] of expr.matchAll(/alertname="([^"]+)"/g)) expect(ALERT_EXPRS.map((a) => a.name.split(': ')[1]), 'an alert of the rule files').toContain(alert);
        for (const label of ['alertname', 'alertstate', 'severity']) known.add(label);
        continue;
      }
      if (name.startsWith('redis_') && !hasRedisServer) {
        if (inCi) throw new Error(REDIS_SERVER_MISSING);
        continue;
      }
      expect(metrics.has(name), `${name} is in /metrics`).toBe(true);
      for (const label of metrics.get(name) ?? []) known.add(label);
    }
    for (const label of labels) expect(known.has(label), `label ${label} is on ${[...series].join(', ')} or added by Prometheus`).toBe(true);
  });

  it.each([...DASHBOARD_EXPRS, ...ALERT_EXPRS])('$name: every series it selects is the paysim scrape job’s ($expr)', ({ expr }) => {
    // In a Prometheus shared with other services, a series name such as http_requests_total is theirs
    // too (ut69b, 2026-12-06: the request panels counted another job's /health and 404s).
    const selectors = seriesSelectors(expr);
    expect(selectors.length, 'the query selects a series').toBeGreaterThan(0);
    for (const { name, matchers } of selectors) expect(matchers, name).toContain(`job="${PROMETHEUS.scrape_configs[0]?.job_name}"`);
  });

  it('the dashboard draws what issue 14 asks for: rate and latency by route, outcomes, webhook success and latency, queue depth, store fill', () => {
    const drawn = new Set(DASHBOARD_EXPRS.flatMap(({ expr }) => [...queryNames(expr).series]));
    for (const name of [
      'http_requests_total',
      'http_request_duration_seconds_bucket',
      'payment_intents_finalized_total',
      'webhook_deliveries_total',
      'webhook_attempts_total',
      'webhook_delivery_latency_seconds_bucket',
      'webhook_queue_depth',
      'webhook_queue_waiting',
      'store_fill_ratio',
      // A Redis outage, which /metrics and `up` do not show (ut69b, 2026-12-06: no panel showed it).
      'ready',
      // Retries waiting, and FluxPay's outcomes, outbox and waiting rooms (ut71c, 2026-12-07: none drawn).
      'webhook_retries_waiting',
      'fluxpay_outbox_published_total',
      'fluxpay_outbox_depth',
      'fluxpay_waiting_room_queue_length',
    ]) {
      expect(drawn.has(name), name).toBe(true);
    }
    expect(DASHBOARD_EXPRS.some(({ expr }) => queryNames(expr).labels.has('route') && expr.includes('http_request_duration_seconds_bucket'))).toBe(true);
    // Store fill goes over 1 for idempotency keys while more requests run than its bound: the axis
    // reaches 1 and grows past it, never clipping (2026-12-05: it was capped at 1).
    const fill = panel('Store fill').fieldConfig.defaults;
    expect([fill.max, fill.custom?.axisSoftMax]).toEqual([undefined, 1]);
  });

  it('answers the probes the files use: /readyz and /healthz 200, /metrics at the scraped path', async () => {
    const probes = new Set<string>(['/metrics']);
    for (const c of PROMETHEUS.scrape_configs) probes.add(c.metrics_path ?? '/metrics');
    const deployment = one('Deployment', 'paysim');
    const container = deployment.spec?.template?.spec.containers[0] as Container;
    probes.add(container.readinessProbe?.httpGet?.path as string);
    probes.add(container.livenessProbe?.httpGet?.path as string);
    probes.add(container.startupProbe?.httpGet?.path as string);
    for (const backend of HAPROXY_BACKENDS) {
      const check = HAPROXY_SECTIONS.get(backend)?.find((l) => l.startsWith('option httpchk'));
      probes.add(check?.split(/\s+/).at(-1) as string);
    }
    for (const name of REPLICAS) {
      const url = /fetch\('http:\/\/127\.0\.0\.1:\d+(\/[a-z]+)'/.exec(SERVICES[name]?.healthcheck?.test.join(' ') ?? '')?.[1];
      probes.add(url as string);
    }
    expect([...probes].sort()).toEqual(['/healthz', '/metrics', '/readyz']);
    for (const url of probes) {
      const res = await t.app.inject({ url });
      expect(res.statusCode, url).toBe(200);
    }
  });
});

// ---------------------------------------------------------------- Compose

describe('docker-compose.yml', () => {
  it('runs two paysim replicas of the same image and environment, on Redis', () => {
    expect(REPLICAS).toEqual(['paysim-1', 'paysim-2']);
    const [first, second] = REPLICAS.map((name) => SERVICES[name] as ComposeService & { hostname?: string });
    // The same service twice, but for the host name (each replica's own, as in its logs).
    expect({ ...second, hostname: undefined }).toEqual({ ...first, hostname: undefined });
    expect(REPLICAS.map((name) => (SERVICES[name] as { hostname?: string }).hostname)).toEqual(REPLICAS);
    expect(first?.image).toBe('paysim:local');
    const env = replicaEnv('paysim-1');
    expect(env).toMatchObject({ STORE: 'redis', REDIS_URL: 'redis://redis:6379' });
    expect(first?.environment?.WEBHOOK_SECRET).toMatch(/^\$\{WEBHOOK_SECRET:-whsec_[A-Za-z0-9+/=]+\}$/);
    // Longer than the delay before the drain, the drain's budget and the close (the requests' grace,
    // the scheduler's last run, a second): docker stop must not SIGKILL it.
    const config = loadConfig(env);
    expect(Number.parseInt(first?.stop_grace_period ?? '0', 10) * 1000).toBeGreaterThan(config.shutdownDelayMs + config.shutdownTimeoutMs + 1_500 + QUIESCE_WAIT_MS);
  });

  it('a stopping replica stays in the balancer\u2019s checks long enough to be taken out before it closes (SHUTDOWN_DELAY_MS against HAProxy\u2019s inter and fall)', () => {
    const { shutdownDelayMs } = loadConfig(replicaEnv('paysim-1'));
    for (const backend of HAPROXY_BACKENDS) {
      const checks = (HAPROXY_SECTIONS.get(backend) ?? []).find((l) => l.startsWith('default-server ')) ?? '';
      const inter = /\binter (\d+)s\b/.exec(checks)?.[1];
      const fall = /\bfall (\d+)\b/.exec(checks)?.[1];
      expect([inter, fall], backend).toEqual([expect.any(String), expect.any(String)]);
      // The first failing check comes within one interval, the last of `fall` that much later; half a second to spare.
      expect(shutdownDelayMs, backend).toBeGreaterThanOrEqual(Number(fall) * Number(inter) * 1000 + 500);
    }
  });

  it('sets only variables the service reads, to values its configuration accepts', () => {
    for (const name of REPLICAS) {
      const env = replicaEnv(name);
      for (const key of Object.keys(env)) expect(SERVICE_VARIABLES.has(key), `${name}: ${key} is a paysim variable`).toBe(true);
      const config = loadConfig(env);
      expect(config.webhookSecretGenerated).toBe(false);
      expect(config.port).toBe(8080);
    }
  });

  it('keeps Redis on an append-only file in a named volume, and refuses to evict', () => {
    const redis = SERVICES.redis as ComposeService;
    const command = (redis.command ?? []).join(' ');
    expect(command).toMatch(/--appendonly yes\b/);
    expect(command).toMatch(/--maxmemory-policy noeviction\b/);
    // At its maxmemory a full Redis refuses writes (paysim answers 503) rather than growing without end.
    expect(command).toMatch(/--maxmemory 3gb\b/);
    expect(mounts(redis)).toEqual([{ source: 'redis-data', target: '/data', bind: false }]);
    // PONG, not redis-cli's exit status, which is 0 on an error reply too (LOADING): see "the Redis health checks" below.
    expect(redis.healthcheck?.test).toEqual(['CMD-SHELL', REDIS_PING_CHECK]);
  });

  it('orders the start with health conditions on services that have a healthcheck', () => {
    const edges = Object.entries(SERVICES).flatMap(([name, s]) => Object.entries(s.depends_on ?? {}).map(([on, { condition }]) => ({ name, on, condition })));
    expect(edges.length).toBeGreaterThan(0);
    for (const { name, on, condition } of edges) {
      expect(SERVICES[on], `${name} depends on ${on}, a service`).toBeDefined();
      expect(['service_started', 'service_healthy', 'service_completed_successfully'], `${name} → ${on}`).toContain(condition);
      if (condition === 'service_healthy') expect(SERVICES[on]?.healthcheck, `${on} has a healthcheck`).toBeDefined();
    }
    expect(edges).toEqual(
      expect.arrayContaining([
        { name: 'paysim-1', on: 'redis', condition: 'service_healthy' },
        { name: 'paysim-2', on: 'redis', condition: 'service_healthy' },
        { name: 'balancer', on: 'paysim-1', condition: 'service_healthy' },
        { name: 'balancer', on: 'paysim-2', condition: 'service_healthy' },
        { name: 'grafana', on: 'prometheus', condition: 'service_healthy' },
      ]),
    );
    for (const [name, s] of Object.entries(SERVICES)) expect(s.healthcheck, `${name} has a healthcheck`).toBeDefined();
  });

  it('mounts files that exist and declares every named volume it uses', () => {
    const declared = Object.keys(COMPOSE.volumes ?? {});
    const used = new Set<string>();
    for (const [name, s] of Object.entries(SERVICES)) {
      for (const m of mounts(s)) {
        if (m.bind) expect(existsSync(join(REPO, m.source)), `${name} mounts ${m.source}`).toBe(true);
        else used.add(m.source);
      }
    }
    expect([...used].sort()).toEqual(declared.sort());
  });

  it('publishes the balancer, Prometheus and Grafana, never a replica or Redis', () => {
    const published = Object.fromEntries(Object.entries(SERVICES).map(([name, s]) => [name, s.ports ?? []]));
    expect(published).toEqual({ 'paysim-1': [], 'paysim-2': [], balancer: ['8080:8080', '8404:8404'], redis: [], prometheus: ['9090:9090'], grafana: ['3000:3000'] });
  });

  it('Prometheus scrapes every replica directly, each under its own replica label', () => {
    expect(PROMETHEUS.scrape_configs).toHaveLength(1);
    const statics = PROMETHEUS.scrape_configs[0]?.static_configs ?? [];
    expect(statics.map((s) => ({ targets: s.targets, replica: s.labels?.replica }))).toEqual(REPLICAS.map((name) => ({ targets: [`${name}:8080`], replica: name })));
  });

  it('Grafana is provisioned with that Prometheus; every dashboard query names the dashboard’s data-source variable, whose default is its uid, so the dashboard imports into a Grafana whose Prometheus has another uid (before 2026-12-07 every panel named uid prometheus, and lost its data source there: h76b)', () => {
    const datasources = yamlFile<{ datasources: Array<{ uid: string; type: string; url: string }> }>(join(GRAFANA_PROVISIONING, 'datasources', 'prometheus.yml')).datasources;
    expect(datasources).toEqual([expect.objectContaining({ uid: 'prometheus', type: 'prometheus', url: 'http://prometheus:9090' })]);
    const providers = yamlFile<{ providers: Array<{ options: { path: string } }> }>(join(GRAFANA_PROVISIONING, 'dashboards', 'paysim.yml')).providers;
    expect(providers.map((p) => p.options.path)).toEqual(['/etc/grafana/dashboards']);
    const uids = new Set(DASHBOARD.panels.filter((p) => p.type !== 'row').flatMap((p) => [p.datasource?.uid, ...(p.targets ?? []).map((t) => t.datasource?.uid)]));
    expect([...uids]).toEqual(['${datasource}']);
    expect(DASHBOARD.templating.list).toEqual([expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus', current: expect.objectContaining({ value: 'prometheus' }) })]);
  });

  it('the ledger tile shows the largest imbalance in absolute value, red from 1; PaysimLedgerImbalance is one alert on it', () => {
    expect(LEDGER_TILE.targets.map((t) => t.expr)).toEqual(['max(abs(ledger_imbalance{job="paysim"}))']);
    expect(LEDGER_TILE.fieldConfig.defaults.thresholds?.steps).toEqual([
      { color: 'green', value: null },
      { color: 'red', value: 1 },
    ]);
    expect(ALERT_EXPRS.filter((a) => a.name.endsWith(': PaysimLedgerImbalance')).map((a) => a.expr)).toEqual(['max(abs(ledger_imbalance{job="paysim"})) != 0']);
  });

  it('the /api/v2 panel stacks the final statuses only: PENDING (counted at creation) is a line of its own', () => {
    const stacked = stackedExprs(V2_STATUS_PANEL);
    expect(stacked.length).toBeGreaterThan(0);
    for (const expr of stacked) expect(expr).toContain('status!="PENDING"');
    const unstacked = V2_STATUS_PANEL.targets.filter((t) => !stacked.includes(t.expr)).map((t) => t.expr);
    expect(unstacked).toEqual(['sum(rate(v2_payments_total{job="paysim",status="PENDING"}[$__rate_interval]))']);
  });

  it.skipIf(!hasPromtool && !inCi)('the Prometheus config and its rules pass promtool check config', () => {
    if (!hasPromtool) throw new Error(PROMTOOL_MISSING);
    const run = spawnSync('promtool', ['check', 'config', PROMETHEUS_FILE], { cwd: REPO, encoding: 'utf8' });
    expect(`${run.stdout}${run.stderr}`).toContain(`SUCCESS: ${RULE_FILES.length} rule files found`);
    expect(run.status, run.stderr).toBe(0);
  });

  it.skipIf(!hasPromtool && !inCi)('every dashboard query is valid PromQL (promtool check rules, as recording rules)', () => {
    if (!hasPromtool) throw new Error(PROMTOOL_MISSING);
    // Grafana replaces $__rate_interval before Prometheus sees a query; any duration stands for it here.
    const rules = DASHBOARD_EXPRS.map(({ expr }, i) => ({ record: `paysim:dashboard_query_${i}`, expr: expr.replaceAll('$__rate_interval', '1m') }));
    expect(rules.every((r) => !r.expr.includes('$'))).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'paysim-dashboard-'));
    try {
      const file = join(dir, 'dashboard-rules.yml');
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
      const run = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      expect(`${run.stdout}${run.stderr}`).toContain(`SUCCESS: ${rules.length} rules found`);
      expect(run.status, run.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('what the dashboard and the alerts say, evaluated by promtool on made-up series (promtool test rules)', () => {
  it.skipIf(!hasPromtool && !inCi)('the 5xx ratio reads 0 before any 5xx (not No data); the backlog alert fires on the shared queue each replica reports, growing or pinned and jittering; the STORE_FULL alert on refusals; one alert per Redis outage (PaysimNotReady for a long one, PaysimStoreUnavailable for one shorter than its minute); the data-loss alert once per loss; the ledger tile and alert on a negative shared ledger beside a memory replica’s 0 (one alert); the /api/v2 stack counts each payment once; the Redis-slow alert on the replica that waits', () => {
    if (!hasPromtool) throw new Error(PROMTOOL_MISSING);
    const errorRatio = DASHBOARD_EXPRS.find(({ expr }) => expr.includes('status_code=~"5.."'));
    expect(errorRatio, 'a panel of the 5xx ratio').toBeDefined();
    // The webhook attempts' success ratio and its failures' shares, over 5 minutes as Grafana's $__rate_interval would be here.
    const attemptExpr = (marker: string) => (DASHBOARD_EXPRS.find(({ expr }) => expr.includes(marker))?.expr ?? `missing ${marker}`).replaceAll('$__rate_interval', '5m');
    const successRatio = attemptExpr('outcome="success"}');
    const failureShares = attemptExpr('outcome!="success"}');
    const PINNED = `0+200x15 ${Array.from({ length: 15 }, (_, i) => 3000 - (i % 3)).join(' ')} 0x10`;
    const dir = mkdtempSync(join(tmpdir(), 'paysim-rules-test-'));
    try {
      const file = join(dir, 'tests.yml');
      writeFileSync(
        file,
        stringify({
          rule_files: RULE_FILES.map((f) => join(REPO, f)),
          evaluation_interval: '15s',
          tests: [
            {
              interval: '1m',
              input_series: [
                { series: 'http_requests_total{job="paysim",method="GET",route="/v1/sim/intents",status_code="200",replica="paysim-1"}', values: '0+60x20' },
                // Users with a credit balance reach FLUXPAY_MAX_CREDIT_USERS at minute 12 (both Redis replicas report the shared fill); another store full all along is no alert.
                ...['paysim-1', 'paysim-2'].map((replica) => ({ series: `store_fill_ratio{job="paysim",store="fluxpay_credit_users",replica="${replica}"}`, values: '0.5+0.05x9 0.98 0.99 1x20' })),
                { series: 'store_fill_ratio{job="paysim",store="intents",replica="paysim-1"}', values: '1x30' },
                // The balancer's checks of a replica not ready (Redis away, or draining): not the load's errors (ut71c: the 5xx stat read 13.6 % with no API request failing).
                { series: 'http_requests_total{job="paysim",method="GET",route="/readyz",status_code="503",replica="paysim-1"}', values: '0+120x20' },
                { series: 'store_full_total{job="paysim",store="intents",replica="paysim-1"}', values: '0x20 3x20' },
                // paysim-2 cut off from Redis for under a minute at minute 26 (not ready, 12 refusals;
                // PaysimNotReady's minute never passes); paysim-1 reaches it all along. paysim-4 cut off
                // for 4 minutes from minute 10, refusing 5 requests a minute: PaysimNotReady's outage.
                { series: 'store_unavailable_total{job="paysim",replica="paysim-2"}', values: '0x25 12x20' },
                { series: 'ready{job="paysim",replica="paysim-2"}', values: '1x25 0 1x20' },
                { series: 'store_unavailable_total{job="paysim",replica="paysim-1"}', values: '0x45' },
                { series: 'ready{job="paysim",replica="paysim-1"}', values: '1x45' },
                { series: 'store_unavailable_total{job="paysim",replica="paysim-4"}', values: '0x9 5+5x3 20x30' },
                { series: 'ready{job="paysim",replica="paysim-4"}', values: '1x9 0x3 1x30' },
                // Another job of the same Prometheus with metrics of the same names (ut69b, 2026-12-06: every
                // query without a job matcher counted them): its 5xx, its ledger, its refusals and its queue.
                { series: 'http_requests_total{job="othersvc",method="GET",route="/health",status_code="500"}', values: '0+600x20' },
                { series: 'ledger_imbalance{job="othersvc"}', values: '5x30' },
                { series: 'store_full_total{job="othersvc",store="intents"}', values: '0+10x20' },
                { series: 'store_unavailable_total{job="othersvc"}', values: '0+10x45' },
                { series: 'webhook_queue_waiting{job="othersvc"}', values: '5000x30' },
                // Both replicas report the same shared stream, growing by 200 a minute, then pinned
                // near 3,000 from minute 15 (as at WEBHOOK_QUEUE_MAX: it jitters as deliveries start
                // and new ones come), then drained from minute 30.
                { series: 'webhook_queue_waiting{job="paysim",replica="paysim-1"}', values: PINNED },
                { series: 'webhook_queue_waiting{job="paysim",replica="paysim-2"}', values: PINNED },
                // Both replicas see one loss at minute 20; paysim-2 restarts at minute 40 (its count back to 0).
                // paysim-1 misses one scrape at minute 31 (a stale marker): not a loss again 10 minutes later.
                { series: 'redis_data_losses_total{job="paysim",replica="paysim-1"}', values: '0x19 1x10 stale 1x28' },
                { series: 'redis_data_losses_total{job="paysim",replica="paysim-2"}', values: '0x19 1x20 0x20' },
                // paysim-3 starts at minute 50 and sees a loss before its first scrape.
                { series: 'redis_data_losses_total{job="paysim",replica="paysim-3"}', values: '_x50 1x20' },
                // The shared ledger (Redis) goes 30,000 short at minute 10: both Redis replicas say so; a
                // memory replica, with a ledger of its own, says 0.
                ...[
                  ['paysim-1', '0x9 -30000x20'],
                  ['paysim-2', '0x9 -30000x20'],
                  ['memory-1', '0x30'],
                ].map(([replica, values]) => ({ series: `ledger_imbalance{job="paysim",replica="${replica}"}`, values })),
                // FluxPay: 1 payment approved and 0.5 declined a second, and their orders completed (not payments).
                ...[
                  ['payment.approved', 60],
                  ['payment.failed', 30],
                  ['order.completed', 60],
                ].map(([type, perMinute]) => ({ series: `fluxpay_outbox_published_total{job="paysim",event_type="${type}",replica="paysim-1"}`, values: `0+${perMinute}x20` })),
                // Webhook attempts: half succeed for 10 minutes, then none is made (a load test's pause).
                { series: 'webhook_attempts_total{job="paysim",outcome="success",replica="paysim-1"}', values: '0+60x10 600x20' },
                { series: 'webhook_attempts_total{job="paysim",outcome="http_error",replica="paysim-1"}', values: '0+60x10 600x20' },
                { series: 'webhook_attempts_total{job="paysim",outcome="timeout",replica="paysim-1"}', values: '0x30' },
                // /api/v2: 2 payments a second created (PENDING), each ending PAYMENT_COMPLETED (1.5) or PAYMENT_FAILED (0.5).
                ...[
                  ['PENDING', 120],
                  ['PAYMENT_COMPLETED', 90],
                  ['PAYMENT_FAILED', 30],
                ].map(([status, perMinute]) => ({ series: `v2_payments_total{job="paysim",status="${status}",replica="paysim-1"}`, values: `0+${perMinute}x20` })),
              ],
              promql_expr_test: [
                { expr: errorRatio?.expr ?? '', eval_time: '10m', exp_samples: [{ labels: '{}', value: 0 }] },
                // While attempts are made: 50 % succeed, 50 % http_error; when none is made, No data, not a 0 % success
                // ratio (2026-12-05, an SRE's check in a real Prometheus: it read 0 % between runs).
                { expr: successRatio, eval_time: '8m', exp_samples: [{ labels: '{}', value: 0.5 }] },
                { expr: failureShares, eval_time: '8m', exp_samples: [{ labels: '{outcome="http_error"}', value: 0.5 }, { labels: '{outcome="timeout"}', value: 0 }] },
                { expr: successRatio, eval_time: '20m', exp_samples: [] },
                { expr: failureShares, eval_time: '20m', exp_samples: [] },
                // FluxPay's payments by outcome: the payments only, not their orders' events.
                {
                  expr: attemptExpr('fluxpay_outbox_published_total'),
                  eval_time: '10m',
                  exp_samples: [
                    { labels: '{event_type="payment.approved"}', value: 1 },
                    { labels: '{event_type="payment.failed"}', value: 0.5 },
                  ],
                },
                // The ledger tile: 0 before, 30,000 (red: at least 1) after, though it is negative and a memory replica says 0.
                { expr: LEDGER_TILE.targets[0]?.expr ?? '', eval_time: '5m', exp_samples: [{ labels: '{}', value: 0 }] },
                { expr: LEDGER_TILE.targets[0]?.expr ?? '', eval_time: '15m', exp_samples: [{ labels: '{}', value: 30_000 }] },
                // The /api/v2 panel's stack adds up to the payments that ended (2 a second), each counted once: not 4 (PENDING stacked too).
                { expr: `sum(${stackedExprs(V2_STATUS_PANEL).map((e) => `(${e.replaceAll('$__rate_interval', '5m')})`).join(' or ')})`, eval_time: '15m', exp_samples: [{ labels: '{}', value: 2 }] },
              ],
              alert_rule_test: [
                // One alert for the one shared ledger, not one per replica; whichever sign.
                { eval_time: '5m', alertname: 'PaysimLedgerImbalance', exp_alerts: [] },
                {
                  eval_time: '15m',
                  alertname: 'PaysimLedgerImbalance',
                  exp_alerts: [{ exp_labels: { severity: 'critical' }, exp_annotations: { summary: "The ledger's debits and credits differ (by 30000 at most, in absolute value): a bug" } }],
                },
                // Over 1,000 from minute 6: firing once it has been for 10 minutes, still while it is pinned, not once drained.
                ...[10, 15, 35].map((minute) => ({ eval_time: `${minute}m`, alertname: 'PaysimWebhookBacklog', exp_alerts: [] })),
                ...[17, 22, 28].map((minute) => ({
                  eval_time: `${minute}m`,
                  alertname: 'PaysimWebhookBacklog',
                  exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: { summary: 'More than 1,000 webhook deliveries have waited to start for 10 minutes (at WEBHOOK_QUEUE_MAX new ones fail queue_full)' } }],
                })),
                // Credit users at the bound: one alert, at once, not before.
                ...[5, 11].map((minute) => ({ eval_time: `${minute}m`, alertname: 'PaysimCreditUsersFull', exp_alerts: [] })),
                {
                  eval_time: '12m',
                  alertname: 'PaysimCreditUsersFull',
                  exp_alerts: [
                    {
                      exp_labels: { severity: 'warning' },
                      exp_annotations: {
                        summary: "FluxPay holds FLUXPAY_MAX_CREDIT_USERS users' credit balances, which are never evicted: a first credit charge for any other user is refused (409 COMMON_409); raise FLUXPAY_MAX_CREDIT_USERS",
                      },
                    },
                  ],
                },
                // A refusal with 503 STORE_UNAVAILABLE fires once its replica is ready again, named by it, for the
                // 5 minutes it is in; paysim-4's long outage fires PaysimNotReady alone, during it and after.
                ...[10, 11, 13, 14, 18, 25, 26, 31].map((minute) => ({ eval_time: `${minute}m`, alertname: 'PaysimStoreUnavailable', exp_alerts: [] })),
                ...[10, 14, 26, 27].map((minute) => ({ eval_time: `${minute}m`, alertname: 'PaysimNotReady', exp_alerts: [] })),
                ...[11, 13].map((minute) => ({
                  eval_time: `${minute}m`,
                  alertname: 'PaysimNotReady',
                  exp_alerts: [
                    {
                      exp_labels: { severity: 'critical', job: 'paysim', replica: 'paysim-4' },
                      exp_annotations: { summary: 'paysim-4 is not ready (/readyz answers 503: Redis unreachable or loading, or stuck shutting down); see its /readyz and log' },
                    },
                  ],
                })),
                ...[27, 30].map((minute) => ({
                  eval_time: `${minute}m`,
                  alertname: 'PaysimStoreUnavailable',
                  exp_alerts: [
                    {
                      exp_labels: { severity: 'warning', replica: 'paysim-2' },
                      exp_annotations: { summary: 'paysim-2 refused requests with 503 STORE_UNAVAILABLE in the last 5 minutes: Redis unreachable or loading (its /readyz says so), or full, refusing writes, read-only or refusing its user (its log says so)' },
                    },
                  ],
                })),
                // A refusal with 503 STORE_FULL fires at once, named by its store.
                { eval_time: '10m', alertname: 'PaysimStoreFull', exp_alerts: [] },
                {
                  eval_time: '22m',
                  alertname: 'PaysimStoreFull',
                  exp_alerts: [{ exp_labels: { severity: 'warning', store: 'intents' }, exp_annotations: { summary: 'Requests (or due work, which waits for room) were refused with STORE_FULL: store intents is full of unfinished work (raise its bound, or let work finish sooner)' } }],
                },
                // The loss fires one alert (not one per replica) for 10 minutes; a restart's reset fires none;
                // a replica whose first scrape already holds a loss fires it too (increase() alone would not).
                ...[19, 31, 41, 45, 49, 60, 70].map((minute) => ({ eval_time: `${minute}m`, alertname: 'PaysimRedisDataLost', exp_alerts: [] })),
                ...[20, 29, 50, 59].map((minute) => ({
                  eval_time: `${minute}m`,
                  alertname: 'PaysimRedisDataLost',
                  exp_alerts: [
                    {
                      exp_labels: { severity: 'critical' },
                      exp_annotations: { summary: "Redis lost paysim's data (FLUSHALL or FLUSHDB, a restart without persistence, or eviction): what was made before is gone; keep it with an AOF and maxmemory-policy noeviction" },
                    },
                  ],
                })),
              ],
            },
            {
              // Liveness PINGs, 30 each 15 s (scraped every 15 s): paysim-1's under a millisecond all
              // along; paysim-2's take 0.1–0.25 s from minute 10 on (its Redis, or its path to it,
              // slow); paysim-3's for a minute at minute 5 only (a blip).
              interval: '15s',
              input_series: ['0.001', '0.1', '0.25', '+Inf'].flatMap((le) => {
                const fast = le === '0.001' || le === '0.1';
                return [
                  { series: `redis_ping_seconds_bucket{job="paysim",le="${le}",replica="paysim-1"}`, values: '0+30x160' },
                  { series: `redis_ping_seconds_bucket{job="paysim",le="${le}",replica="paysim-2"}`, values: fast ? '0+30x40 1200x120' : '0+30x160' },
                  { series: `redis_ping_seconds_bucket{job="paysim",le="${le}",replica="paysim-3"}`, values: fast ? '0+30x20 600 600 600 600 630+30x135' : '0+30x160' },
                ];
              }),
              alert_rule_test: [
                // The replica that waits for Redis, once its p99 has stayed over 100 ms for 5 minutes;
                // neither the fast one nor the blip (which a 5-minute window fired 5 minutes after it).
                ...['6m', '8m', '10m30s', '11m', '14m'].map((at) => ({ eval_time: at, alertname: 'PaysimRedisSlow', exp_alerts: [] })),
                {
                  eval_time: '20m',
                  alertname: 'PaysimRedisSlow',
                  exp_alerts: [
                    {
                      exp_labels: { severity: 'warning', replica: 'paysim-2' },
                      exp_annotations: { summary: "paysim-2 waits 248.5ms for Redis (p99 of its PING over the last minute, above 100 ms for 5 minutes), and every store call as long: Redis overloaded, swapping or far away, or this replica's own queue" },
                    },
                  ],
                },
              ],
            },
            {
              // A 3-minute Redis outage of paysim-5 scraped every 5 s, as the compose's Prometheus does:
              // not ready from 60 s to 235 s, ready again at 240 s (an evaluation's instant), and its
              // last refusal, a call that failed as Redis came back, counted at the next scrape (245 s).
              // PaysimNotReady fired last at 225 s; the refusals' 5-minute count outlives that by a
              // scrape, and a 5-minute look-back at PaysimNotReady fired PaysimStoreUnavailable at 9 min
              // (rev78a; Prometheus 3, whose ranges leave out their first instant, did so at 8m45s
              // with the last refusal counted at 240 s).
              interval: '5s',
              input_series: [
                { series: 'ready{job="paysim",replica="paysim-5"}', values: '1x11 0x35 1x200' },
                { series: 'store_unavailable_total{job="paysim",replica="paysim-5"}', values: '0x11 1+1x37 38x200' },
              ],
              alert_rule_test: [
                {
                  eval_time: '3m45s',
                  alertname: 'PaysimNotReady',
                  exp_alerts: [
                    {
                      exp_labels: { severity: 'critical', job: 'paysim', replica: 'paysim-5' },
                      exp_annotations: { summary: 'paysim-5 is not ready (/readyz answers 503: Redis unreachable or loading, or stuck shutting down); see its /readyz and log' },
                    },
                  ],
                },
                { eval_time: '4m', alertname: 'PaysimNotReady', exp_alerts: [] },
                ...['3m45s', '4m', '4m15s', '8m45s', '9m', '9m15s', '10m', '11m'].map((at) => ({ eval_time: at, alertname: 'PaysimStoreUnavailable', exp_alerts: [] })),
              ],
            },
            {
              // A receiver that answers errors from minute 5 to minute 10: 9 attempts in 10 fail
              // (2 attempts a second); the attempts succeed before and after. Three deliveries end
              // failed just after minute 10. Another job's failures count for nothing (ut71c: no alert fired
              // for 4,555 failed attempts).
              interval: '15s',
              input_series: [
                { series: 'webhook_attempts_total{job="paysim",outcome="success",replica="paysim-1"}', values: '0+30x20 600+3x20 660+30x40' },
                { series: 'webhook_attempts_total{job="paysim",outcome="http_error",replica="paysim-1"}', values: '0x20 0+27x20 540x40' },
                { series: 'webhook_attempts_total{job="othersvc",outcome="http_error"}', values: '0+300x80' },
                { series: 'webhook_deliveries_total{job="paysim",result="failed",replica="paysim-1"}', values: '0x40 3x40' },
                { series: 'webhook_deliveries_total{job="othersvc",result="failed"}', values: '0+5x80' },
              ],
              alert_rule_test: [
                // Over half failed all along 2 minutes: firing from about minute 8, not before, not once they succeed again.
                ...[4, 7, 13, 18].map((minute) => ({ eval_time: `${minute}m`, alertname: 'PaysimWebhooksFailing', exp_alerts: [] })),
                {
                  eval_time: '9m',
                  alertname: 'PaysimWebhooksFailing',
                  exp_alerts: [
                    {
                      exp_labels: { severity: 'warning' },
                      exp_annotations: { summary: '90% of webhook attempts failed over the last 2 minutes: a receiver answers errors, is too slow or cannot be reached; its deliveries wait to retry (webhook_retries_waiting)' },
                    },
                  ],
                },
                ...[9, 16].map((minute) => ({ eval_time: `${minute}m`, alertname: 'PaysimWebhookDeliveriesFailed', exp_alerts: [] })),
                ...[11, 14].map((minute) => ({
                  eval_time: `${minute}m`,
                  alertname: 'PaysimWebhookDeliveriesFailed',
                  exp_alerts: [
                    {
                      exp_labels: { severity: 'warning' },
                      exp_annotations: { summary: 'Webhook deliveries ended failed (retries spent, 410 Gone, or the URL disabled): their receivers never got those events; see /v1/sim/webhooks/deliveries?status=failed' },
                    },
                  ],
                })),
              ],
            },
            {
              // A replica first scraped with a backlog already there (Prometheus just started, or the
              // job just added): the backlog alert waits for 10 minutes of it (ut69b, 2026-12-06: it
              // fired after one minute, min_over_time of the one point it had).
              interval: '1m',
              // One scrape missed at minute 16 (a stale marker), then none for two more minutes (a
              // Prometheus restart): the backlog goes on (rev69b: a count of the subquery's points reset
              // it for 10 minutes), and so it does 10 minutes later, when the check that the series is
              // 10 minutes old looks back at that gap (2026-12-07: an instant `offset 10m` was empty
              // there, h76b, and so was a 1-minute window, rev76f; the alert resolved meanwhile).
              input_series: [{ series: 'webhook_queue_waiting{job="paysim",replica="paysim-1"}', values: '2000x15 stale _x2 2000x15' }],
              alert_rule_test: [
                ...[1, 5, 9].map((minute) => ({ eval_time: `${minute}m`, alertname: 'PaysimWebhookBacklog', exp_alerts: [] })),
                ...[11, 15, 17, 20, 26, 27, 28, 29, 30].map((minute) => ({
                  eval_time: `${minute}m`,
                  alertname: 'PaysimWebhookBacklog',
                  exp_alerts: [{ exp_labels: { severity: 'warning' }, exp_annotations: { summary: 'More than 1,000 webhook deliveries have waited to start for 10 minutes (at WEBHOOK_QUEUE_MAX new ones fail queue_full)' } }],
                })),
              ],
            },
          ],
        }),
      );
      const run = spawnSync('promtool', ['test', 'rules', file], { encoding: 'utf8' });
      expect(`${run.stdout}${run.stderr}`).toContain('SUCCESS');
      expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------- Redis health checks

/** Compose's Redis healthcheck and the Kubernetes Redis readiness probe, in a shell. */
const REDIS_PING_CHECK = 'redis-cli ping | grep -q PONG';
const hasRedisCli = spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).error === undefined;

describe('the Redis health checks', () => {
  /** The exit status of `command` in a shell (not spawnSync: the fake Redis below answers from this process). */
  const exitOf = async (command: string): Promise<number | null> => {
    const child = spawn('sh', ['-c', command], { stdio: 'ignore', timeout: 10_000 });
    const [code] = (await once(child, 'exit')) as [number | null];
    return code;
  };
  /** The check's exit status, its redis-cli pointed at `port` on this machine. */
  const checkAt = (port: number) => exitOf(REDIS_PING_CHECK.replace('redis-cli', `redis-cli -h 127.0.0.1 -p ${port}`));

  it.skipIf(!hasRedisCli || !hasRedisServer)('pass on PONG only: a Redis loading its data set (an error reply, on which redis-cli ping exits 0) fails them', async () => {
    // A Redis that is loading its AOF answers every command with an error.
    const fake = createTcpServer((socket) => socket.once('data', () => socket.end('-LOADING Redis is loading the dataset in memory\r\n')));
    fake.listen(0, '127.0.0.1');
    await once(fake, 'listening');
    try {
      const port = (fake.address() as AddressInfo).port;
      expect(await exitOf(`redis-cli -h 127.0.0.1 -p ${port} ping`), 'redis-cli ping alone').toBe(0);
      expect(await checkAt(port)).toBe(1);
    } finally {
      await new Promise((resolve) => fake.close(resolve));
    }
    const redis = await startRedis();
    try {
      expect(await checkAt(Number(new URL(redis.url).port))).toBe(0);
    } finally {
      await redis.stop();
    }
  });
});

// ---------------------------------------------------------------- HAProxy

const hasHaproxy = spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).error === undefined;
const HAPROXY_MISSING = 'haproxy is not on PATH and CI is set: install it with `apt-get install -y --no-install-recommends haproxy` (Debian package haproxy)';

describe(`the balancer (${HAPROXY_FILE})`, () => {
  it('balances over every replica with active checks on /readyz, in each backend', () => {
    expect(HAPROXY_BACKENDS.sort()).toEqual(['backend console', 'backend replicas']);
    for (const backend of HAPROXY_BACKENDS) {
      const lines = HAPROXY_SECTIONS.get(backend) ?? [];
      expect(lines, backend).toContain('option httpchk GET /readyz');
      expect(lines.some((l) => /^default-server\b.*\bcheck\b/.test(l)), `${backend} checks its servers`).toBe(true);
      const servers = lines.filter((l) => l.startsWith('server ') && !/\bbackup\b/.test(l)).map((l) => l.split(/\s+/).slice(1, 3));
      expect(servers, backend).toEqual(REPLICAS.map((name) => [name, `${name}:8080`]));
    }
  });

  it('streams the console: no compression or buffering, a server timeout longer than the feed heartbeat, sticky console sessions', async () => {
    expect(haproxyLines.filter((l) => /^(compression|option http-buffer-request|filter)\b/.test(l))).toEqual([]);
    const { HEARTBEAT_MS } = await import('../../src/console/feed.ts');
    const serverTimeout = /^timeout server (\d+)s$/.exec(HAPROXY_SECTIONS.get('defaults')?.find((l) => l.startsWith('timeout server')) ?? '')?.[1];
    expect(Number(serverTimeout) * 1000).toBeGreaterThan(HEARTBEAT_MS);
    expect(HAPROXY_SECTIONS.get('frontend paysim')).toContain('use_backend console if { path_beg /console }');
    expect(HAPROXY_SECTIONS.get('backend console')?.some((l) => l.startsWith('cookie '))).toBe(true);
    // The balancer listens where Compose publishes it.
    expect(HAPROXY_SECTIONS.get('frontend paysim')).toContain('bind :8080');
  });

  it.skipIf(!hasHaproxy && !inCi)('runs: with no replica ready (Redis away), the requests still reach them and clients get their 503 with Retry-After, not HAProxy\u2019s page; with one ready, only that one', { timeout: 30_000 }, async () => {
    if (!hasHaproxy) throw new Error(HAPROXY_MISSING);
    // Two stand-ins for the replicas: /readyz as they answer it while Redis is away (or ready), the rest a native 503.
    let ready = [false, false];
    const replicas = await Promise.all(
      [0, 1].map(async (index) => {
        const server = createServer((request, response) => {
          if (request.url === '/readyz') {
            response.writeHead(ready[index] ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ready[index] ? 'ready' : 'store_unavailable' }));
            return;
          }
          if (ready[index]) response.writeHead(200, { 'content-type': 'application/json', 'x-replica': String(index) }).end('{"ok":true}');
          else response.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1', 'x-replica': String(index) }).end('{"error":{"code":"STORE_UNAVAILABLE"}}');
        });
        server.listen(0, '127.0.0.1');
        await once(server, 'listening');
        return server;
      }),
    );
    const portOf = (server: NetServer): number => (server.address() as AddressInfo).port;
    const [front, stats] = await Promise.all([closedPort(), closedPort()]);
    // The file as it is, on this machine's addresses, its checks quicker (200 ms instead of 2 s).
    const config = read(HAPROXY_FILE)
      .replaceAll('paysim-1:8080', `127.0.0.1:${portOf(replicas[0]!)}`)
      .replaceAll('paysim-2:8080', `127.0.0.1:${portOf(replicas[1]!)}`)
      .replace('bind :8080', `bind 127.0.0.1:${front}`)
      .replace('bind :8404', `bind 127.0.0.1:${stats}`)
      .replaceAll('inter 2s', 'inter 200ms')
      // Quicker checks, their time to answer as the file's (without it, the check's interval: a stall of the test process marked a ready replica down, a review).
      .replace('    timeout connect 3s', '    timeout connect 3s\n    timeout check 2s');
    expect(config).toContain('timeout check 2s');
    const dir = mkdtempSync(join(tmpdir(), 'paysim-haproxy-'));
    writeFileSync(join(dir, 'haproxy.cfg'), config);
    const haproxy = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: 'ignore' });
    const get = async (path: string): Promise<{ status: number; retryAfter: string | null; replica: string | null; body: string }> => {
      const res = await fetch(`http://127.0.0.1:${front}${path}`);
      return { status: res.status, retryAfter: res.headers.get('retry-after'), replica: res.headers.get('x-replica'), body: await res.text() };
    };
    try {
      // Both replicas fail their checks (fall 2: a few hundred ms): the backups, the same replicas, answer.
      const unready = await eventually(async () => {
        const res = await get('/v1/sim/intents/pay_x').catch(() => undefined);
        return res !== undefined && res.replica !== null ? res : undefined;
      }, 'HAProxy up', 10_000);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await get('/v1/sim/intents/pay_x'));
      expect(unready.status).toBe(503);
      expect(answers.map((a) => [a.status, a.retryAfter, a.body])).toEqual(Array.from({ length: 4 }, () => [503, '1', '{"error":{"code":"STORE_UNAVAILABLE"}}']));
      // Both backups take requests (option allbackups).
      expect(new Set(answers.map((a) => a.replica))).toEqual(new Set(['0', '1']));
      // The console too: its own 503 page, not HAProxy's (before 2026-12-06 its backend had no backups, a user test).
      const consolePage = await get('/console/payments');
      expect([consolePage.status, consolePage.retryAfter, consolePage.body, consolePage.replica === null]).toEqual([503, '1', '{"error":{"code":"STORE_UNAVAILABLE"}}', false]);

      // One replica ready again (rise 2): only it is sent requests; the backups wait.
      ready = [false, true];
      // (Its backup twin answers 200 as soon as it is ready; the checks take it back as active within rise 2.)
      await eventually(async () => ((await get('/v1/sim/intents/pay_x')).status === 200 ? true : undefined), 'the ready replica in use', 10_000);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const later = [];
      for (let i = 0; i < 4; i++) later.push(await get('/v1/sim/intents/pay_x'));
      expect(later.map((a) => [a.status, a.replica])).toEqual(Array.from({ length: 4 }, () => [200, '1']));
    } finally {
      haproxy.kill('SIGTERM');
      await Promise.all(replicas.map((server) => new Promise((resolve) => server.close(resolve))));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!hasHaproxy && !inCi)('passes haproxy -c (the replicas\u2019 names resolve only inside Compose)', () => {
    if (!hasHaproxy) throw new Error(HAPROXY_MISSING);
    const run = spawnSync('haproxy', ['-c', '-f', HAPROXY_FILE], { cwd: REPO, encoding: 'utf8' });
    const output = `${run.stdout}${run.stderr}`;
    expect(output).toContain('Configuration file is valid');
    expect(run.status, output).toBe(0);
    // Any warning other than the unresolvable replicas (no Docker DNS here) is a defect of the file.
    const warnings = output.split('\n').filter((l) => l.includes('[WARNING]'));
    for (const w of warnings) expect(w).toMatch(/could not resolve address 'paysim-[12]'/);
  });
});

// ---------------------------------------------------------------- Kubernetes

describe('deploy/kubernetes', () => {
  const configMap = one('ConfigMap', 'paysim');
  const deployment = one('Deployment', 'paysim');
  const pod = deployment.spec?.template as PodTemplate;
  const container = pod.spec.containers[0] as Container;
  const secret = SECRET_EXAMPLE[0] as Manifest;

  it('holds a ConfigMap, the Deployment and its Service, and Redis (StatefulSet and Service)', () => {
    expect(K8S.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual(['ConfigMap/paysim', 'Deployment/paysim', 'Service/paysim', 'Service/paysim-redis', 'Service/paysim-redis-headless', 'StatefulSet/paysim-redis']);
    expect(SECRET_EXAMPLE.map((m) => `${m.kind}/${m.metadata.name}`)).toEqual(['Secret/paysim']);
  });

  // A TypeScript program over kubernetes-models' types: 22 s once on a loaded machine.
  it('every manifest is an object of its kind as the Kubernetes API types it: known fields only, each of its type, the required ones there', { timeout: 90_000 }, () => {
    const all = [...K8S, ...SECRET_EXAMPLE];
    expect(kubernetesTypeErrors(all)).toEqual([]);
    for (const manifest of all) expect(() => validateManifest(manifest), `${manifest.kind}/${manifest.metadata.name}`).not.toThrow();
    // Each check finds what the other cannot, all of it what `kubectl apply` would refuse. The types:
    // a misspelt field and a number written as a string (the validator passes the field over).
    const broken = structuredClone(deployment) as Manifest & { spec: Record<string, unknown> };
    const brokenContainer = (broken.spec.template as PodTemplate).spec.containers[0] as Container & Record<string, unknown>;
    brokenContainer.readinesProbe = brokenContainer.readinessProbe;
    broken.spec.replicas = '2' as never;
    expect(kubernetesTypeErrors([broken])).toEqual([
      expect.stringMatching(/^Deployment\/paysim: Type 'string' is not assignable to type 'number'/),
      expect.stringMatching(/^Deployment\/paysim: Object literal may only specify known properties, and '"readinesProbe"' does not exist in type 'IContainer'/),
    ]);
    expect(() => validateManifest(broken)).toThrow(/^data\/spec\/replicas must be integer$/);
    // Both: a required field missing.
    const unselected = structuredClone(deployment) as Manifest & { spec: Record<string, unknown> };
    delete unselected.spec.selector;
    expect(kubernetesTypeErrors([unselected])).toEqual([expect.stringMatching(/^Deployment\/paysim: Property '"selector"' is missing in type .* but required in type 'IDeploymentSpec'\.$/)]);
    expect(() => validateManifest(unselected)).toThrow(/^data\/spec must have required property selector$/);
    // The validator: a quantity that is not one (a string to the types).
    const unmeasured = structuredClone(deployment);
    ((unmeasured.spec?.template as PodTemplate).spec.containers[0] as Container).resources = { limits: { memory: '512 MiBs' } };
    expect(kubernetesTypeErrors([unmeasured])).toEqual([]);
    expect(() => validateManifest(unmeasured)).toThrow(/limits\/memory/);
  });

  it('runs two replicas with readiness on /readyz, liveness on /healthz after a start of up to 10 minutes (a Redis loading its data set), on the configured port, with resources', () => {
    expect(deployment.spec?.replicas).toBe(2);
    expect(pod.spec.containers).toHaveLength(1);
    const port = Number(configMap.data?.PORT);
    expect(container.ports).toEqual([{ name: 'http', containerPort: port }]);
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.startupProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect((container.startupProbe?.periodSeconds ?? 10) * (container.startupProbe?.failureThreshold ?? 3)).toBe(600);
    expect(container.resources?.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container.resources?.limits).toMatchObject({ memory: expect.any(String) });
    expect(deployment.spec?.selector?.matchLabels).toEqual(pod.metadata.labels);
  });

  it('takes its environment from the ConfigMap and WEBHOOK_SECRET from the Secret: all paysim variables, all accepted', () => {
    expect(container.envFrom).toEqual([{ configMapRef: { name: configMap.metadata.name } }]);
    expect(container.env).toEqual([{ name: 'WEBHOOK_SECRET', valueFrom: { secretKeyRef: { name: secret.metadata.name, key: 'WEBHOOK_SECRET' } } }]);
    const env = { ...configMap.data, ...secret.stringData };
    for (const key of Object.keys(env)) expect(SERVICE_VARIABLES.has(key), `${key} is a paysim variable`).toBe(true);
    expect(env).toMatchObject({ STORE: 'redis' });
    const config = loadConfig(env);
    expect(config.webhookSecretGenerated).toBe(false);
    // SIGTERM waits for the preStop sleep (the pod's endpoints gone from every node's proxy), and
    // its drain, with the process's own close after it (the requests' grace, the scheduler's last
    // run, a second), ends before the kubelet's SIGKILL.
    const preStop = container.lifecycle?.preStop?.exec?.command ?? [];
    expect(preStop).toEqual(['sleep', expect.stringMatching(/^\d+$/)]);
    const preStopMs = Number(preStop[1]) * 1000;
    expect(preStopMs).toBeGreaterThanOrEqual(5_000);
    expect((pod.spec.terminationGracePeriodSeconds ?? 30) * 1000).toBeGreaterThan(preStopMs + config.shutdownDelayMs + config.shutdownTimeoutMs + 1_500 + QUIESCE_WAIT_MS);
  });

  it('its commented lines for Redis over TLS (a private CA, a client certificate from a Secret), uncommented, make a Deployment the API accepts whose settings the service reads and whose files the mounted Secret holds', () => {
    // The commented YAML only (`# key:`, `# - key:` and their continuations), not the comments in words.
    const text = read(join(K8S_DIR, 'deployment.yaml')).replace(/^(\s*)# (?=(- )?[A-Za-z]+:( |$)| {2})/gm, '$1');
    const uncommented = parse(text) as Manifest;
    expect(() => validateManifest(uncommented)).not.toThrow();
    const podSpec = (uncommented.spec?.template as PodTemplate).spec as PodTemplate['spec'] & { securityContext: Record<string, unknown>; volumes: unknown[] };
    const tlsContainer = podSpec.containers[0] as Container & { volumeMounts: unknown[] };
    const files = { REDIS_TLS_CERT: '/etc/paysim/redis-tls/tls.crt', REDIS_TLS_KEY: '/etc/paysim/redis-tls/tls.key', REDIS_TLS_CA: '/etc/paysim/redis-tls/ca.crt' };
    expect(tlsContainer.env?.filter((e) => e.name.startsWith('REDIS_TLS_'))).toEqual(Object.entries(files).map(([name, value]) => ({ name, value })));
    for (const name of Object.keys(files)) expect(SERVICE_VARIABLES, name).toContain(name);
    expect(tlsContainer.volumeMounts).toEqual([{ name: 'redis-tls', mountPath: '/etc/paysim/redis-tls', readOnly: true }]);
    // The keys of a `kubernetes.io/tls` Secret with the CA added (README "Kubernetes"); group-readable, by the pod's fsGroup.
    expect(podSpec.volumes).toEqual([{ name: 'redis-tls', secret: { secretName: 'paysim-redis-tls', defaultMode: expect.any(Number) } }]);
    expect(podSpec.securityContext.fsGroup).toBe(podSpec.securityContext.runAsGroup);
    // As shipped, none of it: the Redis of redis.yaml takes plain connections.
    expect(container.env?.map((e) => e.name)).toEqual(['WEBHOOK_SECRET']);
  });

  it('the Service selects the pods on the named port; REDIS_URL names the Redis Service', () => {
    const service = one('Service', 'paysim');
    expect(service.spec?.selector).toEqual(pod.metadata.labels);
    expect(service.spec?.ports).toEqual([{ name: 'http', port: 8080, targetPort: 'http' }]);
    const redisService = one('Service', 'paysim-redis');
    const url = new URL(configMap.data?.REDIS_URL ?? '');
    expect(`${url.hostname}:${url.port}`).toBe(`${redisService.metadata.name}:${redisService.spec?.ports?.[0]?.port}`);
  });

  it('Redis is a StatefulSet with AOF on a PersistentVolumeClaim', () => {
    const redis = one('StatefulSet', 'paysim-redis');
    const pods = redis.spec?.template as PodTemplate;
    const c = pods.spec.containers[0] as Container;
    expect((c.args ?? []).join(' ')).toMatch(/--appendonly yes\b/);
    expect((c.args ?? []).join(' ')).toMatch(/--maxmemory-policy noeviction\b/);
    // A maxmemory below the memory limit, with room for an AOF rewrite: Redis refuses writes (paysim answers 503) before the kubelet kills it.
    const maxmemory = /--maxmemory (\d+)gb\b/.exec((c.args ?? []).join(' '));
    const limit = /^(\d+)Gi$/.exec(c.resources?.limits?.memory ?? '');
    expect([maxmemory?.[1], limit?.[1]]).toEqual(['3', '5']);
    // Redis reads `gb` as 1024³ bytes, as Kubernetes reads `Gi`.
    expect(Number(maxmemory?.[1]) / Number(limit?.[1])).toBeLessThanOrEqual(0.6);
    expect(c.readinessProbe?.exec?.command).toEqual(['sh', '-c', REDIS_PING_CHECK]);
    expect(c.volumeMounts).toEqual([{ name: 'data', mountPath: '/data' }]);
    expect(redis.spec?.volumeClaimTemplates?.map((v) => v.metadata.name)).toEqual(['data']);
    expect(one('Service', 'paysim-redis').spec?.selector).toEqual(pods.metadata.labels);
    // Its governing Service is headless (ut71c: it named the ClusterIP one, so the pod had no DNS name of its own).
    const governing = one('Service', redis.spec?.serviceName ?? '');
    expect([governing.spec?.clusterIP, governing.spec?.selector]).toEqual(['None', pods.metadata.labels]);
  });
});
