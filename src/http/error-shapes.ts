import type { ErrorShape } from './error-handler.ts';
import type { Problem } from './problem.ts';

/** What answers a problem as a page (`sendProblem` sets its status and headers first). */
export type PageShape = Pick<ErrorShape, 'statusFor' | 'render'>;

/**
 * Which dialect owns a path, for the errors answered before any dialect's route runs: unknown
 * routes (404), known paths with another method (405), over-long URLs (414), unreadable URLs,
 * load shedding and shutdown (503). The longest registered prefix that matches at a segment
 * boundary wins (a dialect's exact `paths` win over any prefix); paths no dialect owns get the default shape.
 */
export class ErrorShapes {
  readonly #byPrefix: Array<{ prefix: string; shape: ErrorShape }> = [];
  readonly #byPath: Array<{ path: RegExp; shape: ErrorShape }> = [];
  readonly #listeners: Array<(problem: Problem) => void> = [];
  readonly #pages: Array<{ prefix: string; shape: PageShape }> = [];
  #fallback: ErrorShape | undefined;

  /** Tells `listener` about every problem answered (metrics count some of them). */
  onProblem(listener: (problem: Problem) => void): void {
    this.#listeners.push(listener);
  }

  notify(problem: Problem): void {
    for (const listener of this.#listeners) listener(problem);
  }

  register(shape: ErrorShape, options: { fallback?: boolean } = {}): void {
    for (const prefix of shape.prefixes) {
      if (this.#byPrefix.some((p) => p.prefix === prefix)) throw new Error(`the path prefix ${prefix} already belongs to another dialect`);
      this.#byPrefix.push({ prefix, shape });
    }
    this.#byPrefix.sort((a, b) => b.prefix.length - a.prefix.length);
    for (const path of shape.paths ?? []) this.#byPath.push({ path, shape });
    if (options.fallback === true) this.#fallback = shape;
  }

  /**
   * Pages under `prefix` (the console's) answer the requests refused at the door (a shutdown's or
   * an overload's 503, a 414, a missing `Host`) with `shape`, an HTML page, not the default
   * dialect's JSON. No dialect owns them: `ownerOf` and `forUrl` are unchanged (fault rules,
   * namespaces and the OpenAPI document skip them; a refusal Node's parser answers stays JSON).
   */
  registerPages(prefix: string, shape: PageShape): void {
    this.#pages.push({ prefix, shape });
  }

  /** The shape of a request refused before any route runs: the pages' where they answer, else `forUrl`'s. */
  forRefusal(url: string): PageShape {
    if (this.#pages.length > 0) {
      const path = routedPath(url.split('?', 1)[0] as string);
      for (const { prefix, shape } of this.#pages) if (under(path, prefix)) return shape;
    }
    return this.forUrl(url);
  }

  /** The shape for a request URL (query string ignored), by its path as the router sees it: percent-decoded (`/event%73` is `/events`). */
  forUrl(url: string): ErrorShape {
    const owner = this.ownerOf(url);
    if (owner !== undefined) return owner;
    if (this.#fallback === undefined) throw new Error('no fallback error shape is registered');
    return this.#fallback;
  }

  /** The dialect that owns a URL's path, or undefined when none does (`/`, `/healthz`, `/console`: the fallback shape answers those). */
  ownerOf(url: string): ErrorShape | undefined {
    const path = routedPath(url.split('?', 1)[0] as string);
    for (const { path: pattern, shape } of this.#byPath) if (pattern.test(path)) return shape;
    for (const { prefix, shape } of this.#byPrefix) if (under(path, prefix)) return shape;
    return undefined;
  }
}

/** Whether `path` is `prefix` or under it, at a segment boundary (`/v1/sim/x`, not `/v1/simx`). */
function under(path: string, prefix: string): boolean {
  return path === prefix || (path.startsWith(prefix) && path[prefix.length] === '/');
}

/**
 * A path percent-decoded as the router decodes it before matching, so an error answered for
 * `/event%73` (a 404 or 405 the router worked out on `/events`) takes the shape of `/events`.
 * Escapes of reserved characters (`%2F`) stay, as `decodeURI` leaves them; a path that cannot be
 * decoded is taken as it is.
 */
function routedPath(path: string): string {
  if (!path.includes('%')) return path;
  try {
    return decodeURI(path);
  } catch {
    return path;
  }
}
