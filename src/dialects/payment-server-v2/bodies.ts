import { errorCodes, type FastifyInstance } from 'fastify';
import { parseJsonBody } from '../../http/json-body.ts';

/**
 * FastAPI reads a request body as JSON when it has no `Content-Type` at all, or an
 * `application/json` or `application/…+json` one (a Python client posting `data=json.dumps(…)`
 * sends none): the `/api/v2` scope does the same, so such a client of source document 001 works
 * unchanged (before 2026-12-04 it got 415). Any other type is still 415 in FastAPI's shape, where
 * FastAPI hands the text to validation (422): no client of the original relies on that.
 * @see https://github.com/fastapi/fastapi/blob/master/fastapi/routing.py (get_request_handler)
 */
export function useFastApiBodies(scope: FastifyInstance): void {
  // Every type, application/json too, read here (the root's parsers do not read as FastAPI does).
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    if ((body as Buffer).length === 0) return done(null, undefined);
    if (readsAsJson(request.headers['content-type'])) return parseJsonBody(request, body, done, true);
    done(new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(request.headers['content-type']), undefined);
  });
}

/** No content type, or `application/json` or `application/<anything>+json`, whatever its parameters. */
export function readsAsJson(contentType: string | undefined): boolean {
  if (contentType === undefined || contentType.trim() === '') return true;
  const type = (contentType.split(';')[0] as string).trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}
