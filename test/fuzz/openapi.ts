import type { FastifyInstance } from 'fastify';

/**
 * The fuzzer's view of the API: every operation of the OpenAPI document the running app serves
 * (`GET /openapi.json`), with `$ref`s resolved, path/query/header parameters (security schemes
 * that put a credential in a header count as header parameters), the request body and the
 * documented statuses. Nothing here knows a route by name: add a route, and it is fuzzed.
 */

export type JsonSchema = { [key: string]: unknown };

export interface ParamSpec {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  schema: JsonSchema;
}

export interface BodySpec {
  required: boolean;
  contentTypes: string[];
  schema: JsonSchema;
}

export interface OperationSpec {
  /** `POST /v1/sim/intents/{id}/cancel`: the route key statistics are grouped by. */
  key: string;
  method: string;
  /** The OpenAPI path template, e.g. `/v1/sim/intents/{id}/cancel`. */
  path: string;
  /** The template split at `/`: literals, and parameters by name. */
  segments: Array<{ literal: string } | { param: string }>;
  params: ParamSpec[];
  body: BodySpec | undefined;
  /** `bearer` when a security scheme asks for `Authorization: Bearer …`. */
  bearer: boolean;
  /** Documented response statuses (`200`, `4XX`, `default`). */
  responses: string[];
}

export interface ApiModel {
  document: JsonSchema;
  operations: OperationSpec[];
  /** Every method each path template has, for "another method on a known path". */
  methodsByPath: Map<string, string[]>;
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/**
 * Operations never generated: a fault rule (issue 15) makes the service answer 5xx, wait or reset
 * connections on purpose, which is what the properties forbid. Their paths stay known (a 405 on
 * them is still generated); the rules are tested by test/integration/faults-*.test.ts.
 */
const DELIBERATE_FAULTS: ReadonlySet<string> = new Set(['POST /v1/sim/rules']);

/** Reads the document from the app (no socket) and builds the model. */
export async function loadApiModel(app: FastifyInstance): Promise<ApiModel> {
  const res = await app.inject({ method: 'GET', url: '/openapi.json' });
  if (res.statusCode !== 200) throw new Error(`GET /openapi.json answered ${res.statusCode}`);
  return apiModelOf(res.json() as JsonSchema);
}

export function apiModelOf(document: JsonSchema): ApiModel {
  const resolver = new RefResolver(document);
  const operations: OperationSpec[] = [];
  const methodsByPath = new Map<string, string[]>();
  const paths = (document.paths ?? {}) as Record<string, JsonSchema>;
  const globalSecurity = document.security as Array<Record<string, unknown>> | undefined;
  const schemes = ((document.components as JsonSchema | undefined)?.securitySchemes ?? {}) as Record<string, JsonSchema>;
  for (const [path, rawItem] of Object.entries(paths)) {
    const item = resolver.deref(rawItem) as JsonSchema;
    const shared = (item.parameters ?? []) as JsonSchema[];
    const methods: string[] = [];
    for (const method of HTTP_METHODS) {
      const rawOp = item[method] as JsonSchema | undefined;
      if (rawOp === undefined) continue;
      methods.push(method.toUpperCase());
      const op = resolver.deref(rawOp) as JsonSchema;
      const params = new Map<string, ParamSpec>();
      for (const raw of [...shared, ...((op.parameters ?? []) as JsonSchema[])]) {
        const p = resolver.deref(raw) as JsonSchema;
        const where = p.in as string;
        if (where !== 'path' && where !== 'query' && where !== 'header') continue;
        const name = where === 'header' ? String(p.name).toLowerCase() : String(p.name);
        params.set(`${where}:${name}`, { name, in: where, required: p.required === true || where === 'path', schema: (p.schema ?? {}) as JsonSchema });
      }
      let bearer = false;
      for (const requirement of (op.security as Array<Record<string, unknown>> | undefined) ?? globalSecurity ?? []) {
        for (const schemeName of Object.keys(requirement)) {
          const scheme = resolver.deref(schemes[schemeName] ?? {}) as JsonSchema;
          if (scheme.type === 'http' && String(scheme.scheme).toLowerCase() === 'bearer') bearer = true;
          if (scheme.type === 'apiKey' && scheme.in === 'header') {
            const name = String(scheme.name).toLowerCase();
            if (!params.has(`header:${name}`)) params.set(`header:${name}`, { name, in: 'header', required: true, schema: { type: 'string', minLength: 1 } });
          }
        }
      }
      if (params.has('header:authorization')) bearer = true;
      let body: BodySpec | undefined;
      const requestBody = op.requestBody as JsonSchema | undefined;
      if (requestBody !== undefined) {
        const content = (requestBody.content ?? {}) as Record<string, JsonSchema>;
        const contentTypes = Object.keys(content);
        const first = contentTypes[0];
        body = { required: requestBody.required === true, contentTypes, schema: first === undefined ? {} : ((content[first]?.schema ?? {}) as JsonSchema) };
      }
      const segments = path
        .split('/')
        .slice(1)
        .map((s) => {
          const m = /^\{(.+)\}$/.exec(s);
          return m?.[1] === undefined ? { literal: s } : { param: m[1] };
        });
      if (DELIBERATE_FAULTS.has(`${method.toUpperCase()} ${path}`)) continue;
      operations.push({
        key: `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        segments,
        params: [...params.values()],
        body,
        bearer,
        responses: Object.keys((op.responses ?? {}) as JsonSchema),
      });
    }
    methodsByPath.set(path, methods);
  }
  return { document, operations, methodsByPath };
}

/**
 * Resolves local `$ref`s (`#/components/…`) into a tree without refs. A ref met again while it is
 * being expanded (a recursive schema) becomes `{}` (anything) at that depth.
 */
export class RefResolver {
  readonly #document: JsonSchema;
  readonly #active = new Set<string>();

  constructor(document: JsonSchema) {
    this.#document = document;
  }

  deref(node: unknown): unknown {
    if (Array.isArray(node)) return node.map((n) => this.deref(n));
    if (node === null || typeof node !== 'object') return node;
    const obj = node as JsonSchema;
    if (typeof obj.$ref === 'string') {
      const ref = obj.$ref;
      if (this.#active.has(ref)) return {};
      this.#active.add(ref);
      try {
        const target = this.deref(this.#lookup(ref));
        // Siblings of $ref (3.1 allows them: description, examples) are kept.
        const { $ref: _ignored, ...siblings } = obj;
        return Object.keys(siblings).length === 0 ? target : { ...(target as JsonSchema), ...(this.deref(siblings) as JsonSchema) };
      } finally {
        this.#active.delete(ref);
      }
    }
    const out: JsonSchema = {};
    for (const [key, value] of Object.entries(obj)) out[key] = this.deref(value);
    return out;
  }

  #lookup(ref: string): unknown {
    if (!ref.startsWith('#/')) throw new Error(`only local $refs are supported, got ${ref}`);
    let node: unknown = this.#document;
    for (const raw of ref.slice(2).split('/')) {
      const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
      node = node !== null && typeof node === 'object' ? (node as JsonSchema)[key] : undefined;
      if (node === undefined) throw new Error(`unresolvable $ref ${ref}`);
    }
    return node;
  }
}
