import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { eventually } from './receiver.ts';

/**
 * An OpenTelemetry collector as the service's OTLP/gRPC exporter sees one: it answers
 * `TraceService/Export` on 127.0.0.1 and keeps every span it was sent, decoded. The messages are
 * the fields of opentelemetry-proto's trace and collector definitions that the tests read, with
 * the same field numbers (protobuf skips the others).
 */

const PROTO = `
syntax = "proto3";
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message Resource { repeated KeyValue attributes = 1; }
message ScopeSpans { repeated Span spans = 2; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5; int32 kind = 6;
  repeated KeyValue attributes = 9; repeated Event events = 11; Status status = 15; fixed32 flags = 16;
}
message Event { string name = 2; }
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; } }
`;

export interface ReceivedSpan {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  attributes: Record<string, string | number | boolean>;
  /** 0 unset, 1 ok, 2 error. */
  statusCode: number;
  /** The status's description ('' when none). */
  statusMessage: string;
  /** Its events' names, in order (`exception` for a recorded error). */
  events: string[];
}

export interface Collector {
  /** `http://127.0.0.1:<port>`, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  endpoint: string;
  spans: ReceivedSpan[];
  /** The spans once `match` finds `count` of them (within `timeoutMs`). */
  waitFor(match: (span: ReceivedSpan) => boolean, count: number, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

interface Decoded {
  resourceSpans?: Array<{ resource?: { attributes?: KeyValue[] }; scopeSpans?: Array<{ spans?: RawSpan[] }> }>;
}
interface KeyValue {
  key: string;
  value?: { stringValue?: string; boolValue?: boolean; intValue?: string; doubleValue?: number };
}
interface RawSpan {
  traceId: Buffer;
  spanId: Buffer;
  parentSpanId?: Buffer;
  name: string;
  attributes?: KeyValue[];
  status?: { code?: number; message?: string };
  events?: Array<{ name?: string }>;
}

function attributesOf(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) {
    if (value?.stringValue !== undefined) out[key] = value.stringValue;
    else if (value?.boolValue !== undefined) out[key] = value.boolValue;
    else if (value?.intValue !== undefined) out[key] = Number(value.intValue);
    else if (value?.doubleValue !== undefined) out[key] = value.doubleValue;
  }
  return out;
}

export async function startCollector(): Promise<Collector> {
  const request = protobuf.parse(PROTO, { keepCase: false }).root.lookupType('ExportTraceServiceRequest');
  const spans: ReceivedSpan[] = [];
  const server = new Server();
  server.register(
    '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    (call: ServerUnaryCall<Decoded, Buffer>, callback: sendUnaryData<Buffer>) => {
      for (const resourceSpans of call.request.resourceSpans ?? []) {
        const service = String(attributesOf(resourceSpans.resource?.attributes)['service.name'] ?? '');
        for (const scope of resourceSpans.scopeSpans ?? []) {
          for (const span of scope.spans ?? []) {
            spans.push({
              service,
              name: span.name,
              traceId: Buffer.from(span.traceId).toString('hex'),
              spanId: Buffer.from(span.spanId).toString('hex'),
              parentSpanId: span.parentSpanId === undefined ? '' : Buffer.from(span.parentSpanId).toString('hex'),
              attributes: attributesOf(span.attributes),
              statusCode: span.status?.code ?? 0,
              statusMessage: span.status?.message ?? '',
              events: (span.events ?? []).map((event) => event.name ?? ''),
            });
          }
        }
      }
      // An empty ExportTraceServiceResponse: no bytes.
      callback(null, Buffer.alloc(0));
    },
    (response: Buffer) => response,
    (bytes: Buffer) => request.toObject(request.decode(bytes), { longs: String, bytes: Buffer, defaults: false }) as Decoded,
    'unary',
  );
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))));
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    waitFor: (match, count, timeoutMs = 10_000) =>
      eventually(() => {
        const found = spans.filter(match);
        return found.length >= count ? found : undefined;
      }, `${count} spans at the collector`, timeoutMs),
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
