import { jwtVerify } from 'jose';
import type { Clock } from '../core/clock.ts';

/**
 * Bearer-token authentication: `Authorization: Bearer <JWT>`, HS256 only (the algorithm is
 * pinned, so a token cannot choose a weaker one), expiry judged on the injected clock like every
 * other time rule of the simulator. The caller is the token's `userId` claim, else its `sub`.
 */

export type BearerResult = { kind: 'user'; userId: string } | { kind: 'missing' } | { kind: 'invalid' };

export interface BearerAuth {
  authenticate(header: string | undefined): Promise<BearerResult>;
}

export function bearerAuth(secret: string, clock: Clock, options: { maxUserIdLength: number }): BearerAuth {
  const key = new TextEncoder().encode(secret);
  return {
    async authenticate(header) {
      const token = bearerToken(header);
      if (token === undefined) return { kind: 'missing' };
      try {
        const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'], currentDate: new Date(clock.now()) });
        const userId = userOfClaims(payload, options.maxUserIdLength);
        return userId === undefined ? { kind: 'invalid' } : { kind: 'user', userId };
      } catch {
        return { kind: 'invalid' };
      }
    },
  };
}

/** `Bearer <token>` → the token; anything else → undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

/** The user a token names: its `userId` claim, else `sub`; a string (or an integer, as some issuers write ids). */
function userOfClaims(payload: Record<string, unknown>, maxLength: number): string | undefined {
  const claim = payload.userId ?? payload.sub;
  const user = typeof claim === 'string' ? claim : Number.isSafeInteger(claim) ? String(claim) : undefined;
  return user !== undefined && user.length > 0 && user.length <= maxLength ? user : undefined;
}
