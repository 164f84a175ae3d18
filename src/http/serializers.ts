import type { FastifyInstance } from 'fastify';
import fastJsonStringify from 'fast-json-stringify';

/**
 * Response serializers, compiled by fast-json-stringify as Fastify's default compiler does (this
 * service adds no shared schemas, so a response schema alone decides its serializer), and shared
 * by every app of the process: an app built again (a namespace's, X-Sim-Namespace, or a test's)
 * reuses them instead of compiling every response schema again, which is the largest part of
 * building an app. Keyed by the schema's JSON (routes make their schema objects as they register);
 * bounded by the schemas in the code.
 */
const serializers = new Map<string, (data: unknown) => string>();

export function useSerializers(app: FastifyInstance): void {
  app.setSerializerCompiler(({ schema }) => {
    const key = JSON.stringify(schema);
    let serialize = serializers.get(key);
    if (serialize === undefined) {
      serialize = fastJsonStringify(schema) as (data: unknown) => string;
      serializers.set(key, serialize);
    }
    return serialize;
  });
}
