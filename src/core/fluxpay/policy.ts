import { parsePeriod } from '../subscriptions/period.ts';
import { admitPerSecondProblem } from '../waiting-room/room.ts';
import { isCurrency } from '../currency.ts';

/**
 * The billing policy: what each service charges per use, per feature, in credits, and the plans
 * that subscriptions sell (used by the subscriptions issue). Document 002 asks for a
 * "YAML 기반 서비스별 과금 정책" (a YAML per-service billing policy): FLUXPAY_POLICY_FILE names
 * one, else `DEFAULT_POLICY` applies. `parsePolicy` checks a parsed document and says, in one
 * line, what is wrong with it.
 * @see issue 11 "Credits", ../../../../shared/seeds/002_38de3c186cddda84.txt ("설정")
 */

export interface ServicePolicy {
  serviceId: string;
  name: string;
  /** Credits one use costs when no feature is named (`POST /credits/use` without `amount`). */
  creditsPerUse: number;
  /** Credits per use of each feature. */
  features: Readonly<Record<string, number>>;
}

export const PLAN_INTERVALS = ['MONTH', 'YEAR'] as const;
export type PlanInterval = (typeof PLAN_INTERVALS)[number];

export interface PlanPolicy {
  planId: string;
  name: string;
  /** Minor units per interval. */
  price: number;
  currency: string;
  /** The billing period, an ISO 8601 duration (`P1M`, `P1Y`, `PT1M`…); `interval: MONTH | YEAR` in the file is short for P1M | P1Y. */
  period: string;
  /** Credits included each period (the entitlements' `credits.included`). */
  credits: number;
  /** Features of the plan's services it unlocks. */
  features: readonly string[];
}

/** A waiting room the policy declares (issue 12): created at start, changeable with PUT. */
export interface WaitingRoomPolicy {
  roomId: string;
  admitPerSecond: number;
  admissionTtlSeconds: number;
  protectedServiceIds: string[];
  maxActive: number | null;
  active: boolean;
}

/** The route groups that are rate-limited separately (issue 12 "Rate limiting"). */
export const RATE_LIMIT_GROUPS = ['orders', 'payments', 'credits', 'events', 'subscriptions', 'waiting-rooms', 'reads'] as const;
export type RateLimitGroup = (typeof RATE_LIMIT_GROUPS)[number];

/** At most `max` requests per client in each window of `windowSeconds`. */
export interface RateLimitPolicy {
  max: number;
  windowSeconds: number;
}

/**
 * The default of every group: generous enough that no test and no benchmark (one client, a few
 * thousand requests a second) is throttled; a policy file tightens the groups it names.
 */
export const DEFAULT_RATE_LIMIT: RateLimitPolicy = Object.freeze({ max: 100_000, windowSeconds: 1 });

export interface BillingPolicy {
  services: ReadonlyMap<string, ServicePolicy>;
  plans: ReadonlyMap<string, PlanPolicy>;
  /** Rooms created at start (an empty map unless the file has `waitingRooms:`). */
  waitingRooms: ReadonlyMap<string, WaitingRoomPolicy>;
  /** Every group's limit: the file's `rateLimits:` entry, else DEFAULT_RATE_LIMIT. */
  rateLimits: Readonly<Record<RateLimitGroup, RateLimitPolicy>>;
}

/** The built-in policy, as YAML (the README shows it as the example of FLUXPAY_POLICY_FILE). */
export const DEFAULT_POLICY_YAML = `# FluxPay billing policy: credits per use, per service and feature, and subscription plans.
services:
  ai-writer:
    name: AI Writer
    creditsPerUse: 10
    features:
      summarize: 5
      translate: 8
  image-studio:
    name: Image Studio
    creditsPerUse: 30
    features:
      upscale: 20
      background-removal: 15
plans:
  basic-monthly:
    name: Basic
    price: 9900
    currency: KRW
    period: P1M
    credits: 1000
    features: [summarize, translate]
  pro-monthly:
    name: Pro
    price: 19900
    currency: KRW
    period: P1M
    credits: 5000
    features: [summarize, translate, upscale, background-removal]
  pro-yearly:
    name: Pro (yearly)
    price: 99000
    currency: KRW
    period: P1Y
    credits: 15000
    features: [summarize, translate, upscale, background-removal]
`;

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** The most credits a billing policy's figure, an order's `metadata.credits` and the API's credit fields may be (schemas.ts `Credits`). */
export const MAX_CREDITS = 1_000_000_000;

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function credits(value: unknown, where: string, min = 1): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > MAX_CREDITS) {
    throw new Error(`${where} must be a whole number from ${min} to ${MAX_CREDITS} (got ${JSON.stringify(value) ?? 'nothing'})`);
  }
  return value;
}

function text(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.trim() === '' || value.length > 200) throw new Error(`${where} must be a non-empty string of at most 200 characters`);
  return value;
}

function onlyKeys(value: Record<string, unknown>, allowed: readonly string[], where: string): void {
  const extra = Object.keys(value).find((key) => !allowed.includes(key));
  if (extra !== undefined) throw new Error(`${where} has an unknown key "${extra}" (allowed: ${allowed.join(', ')})`);
}

/** Checks a parsed policy document; throws an Error with one line naming the first problem. */
export function parsePolicy(document: unknown): BillingPolicy {
  if (!isObject(document)) throw new Error('the policy must be a mapping with `services` (and optionally `plans`, `waitingRooms`, `rateLimits`)');
  onlyKeys(document, ['services', 'plans', 'waitingRooms', 'rateLimits'], 'the policy');
  const servicesIn = document.services;
  if (!isObject(servicesIn) || Object.keys(servicesIn).length === 0) throw new Error('`services` must be a mapping of at least one service id to its policy');
  const services = new Map<string, ServicePolicy>();
  for (const [serviceId, raw] of Object.entries(servicesIn)) {
    const where = `services.${serviceId}`;
    if (!ID.test(serviceId)) throw new Error(`${where}: a service id is 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
    if (!isObject(raw)) throw new Error(`${where} must be a mapping`);
    onlyKeys(raw, ['name', 'creditsPerUse', 'features'], where);
    const features: Record<string, number> = {};
    if (raw.features !== undefined) {
      if (!isObject(raw.features)) throw new Error(`${where}.features must be a mapping of feature names to credits per use`);
      for (const [feature, cost] of Object.entries(raw.features)) {
        if (!ID.test(feature)) throw new Error(`${where}.features: a feature name is 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
        features[feature] = credits(cost, `${where}.features.${feature}`);
      }
    }
    services.set(serviceId, { serviceId, name: text(raw.name ?? serviceId, `${where}.name`), creditsPerUse: credits(raw.creditsPerUse, `${where}.creditsPerUse`), features: Object.freeze(features) });
  }
  const plans = new Map<string, PlanPolicy>();
  const plansIn = document.plans ?? {};
  if (!isObject(plansIn)) throw new Error('`plans` must be a mapping of plan ids to plans');
  for (const [planId, raw] of Object.entries(plansIn)) {
    const where = `plans.${planId}`;
    if (!ID.test(planId)) throw new Error(`${where}: a plan id is 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
    if (!isObject(raw)) throw new Error(`${where} must be a mapping`);
    onlyKeys(raw, ['name', 'price', 'currency', 'period', 'interval', 'credits', 'features'], where);
    const period = planPeriod(raw, where);
    const currency = raw.currency ?? 'KRW';
    if (typeof currency !== 'string' || !isCurrency(currency)) throw new Error(`${where}.currency must be an ISO 4217 currency code such as KRW`);
    const features = raw.features ?? [];
    if (!Array.isArray(features) || !features.every((f) => typeof f === 'string' && ID.test(f))) throw new Error(`${where}.features must be a list of feature names`);
    plans.set(planId, {
      planId,
      name: text(raw.name ?? planId, `${where}.name`),
      price: credits(raw.price, `${where}.price`, 0),
      currency,
      period,
      credits: credits(raw.credits ?? 0, `${where}.credits`, 0),
      features: Object.freeze([...(features as string[])]),
    });
  }
  return { services, plans, waitingRooms: parseWaitingRooms(document.waitingRooms ?? {}, services), rateLimits: parseRateLimits(document.rateLimits ?? {}) };
}

/** `period` (an ISO 8601 duration), else `interval` (MONTH → P1M, YEAR → P1Y); exactly one of them. */
function planPeriod(raw: Record<string, unknown>, where: string): string {
  if (raw.period !== undefined && raw.interval !== undefined) throw new Error(`${where} has both period and interval; give one`);
  if (raw.period === undefined) {
    const interval = raw.interval;
    if (typeof interval !== 'string' || !(PLAN_INTERVALS as readonly string[]).includes(interval)) throw new Error(`${where}.period must be an ISO 8601 duration such as P1M (or interval one of ${PLAN_INTERVALS.join(', ')})`);
    return interval === 'MONTH' ? 'P1M' : 'P1Y';
  }
  if (typeof raw.period !== 'string') throw new Error(`${where}.period must be an ISO 8601 duration such as P1M, P1Y or PT1M`);
  try {
    parsePeriod(raw.period);
  } catch (error) {
    throw new Error(`${where}.period: ${(error as Error).message}`, { cause: error });
  }
  return raw.period;
}

function positiveNumber(value: unknown, where: string, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) throw new Error(`${where} must be a number above 0 and at most ${max} (got ${JSON.stringify(value) ?? 'nothing'})`);
  return value;
}

function parseWaitingRooms(roomsIn: unknown, services: ReadonlyMap<string, ServicePolicy>): Map<string, WaitingRoomPolicy> {
  if (!isObject(roomsIn)) throw new Error('`waitingRooms` must be a mapping of room ids to rooms');
  const rooms = new Map<string, WaitingRoomPolicy>();
  for (const [roomId, raw] of Object.entries(roomsIn)) {
    const where = `waitingRooms.${roomId}`;
    if (!ID.test(roomId)) throw new Error(`${where}: a room id is 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
    if (!isObject(raw)) throw new Error(`${where} must be a mapping`);
    onlyKeys(raw, ['admitPerSecond', 'admissionTtlSeconds', 'protectedServiceIds', 'maxActive', 'active'], where);
    const admitPerSecond = raw.admitPerSecond;
    if (typeof admitPerSecond !== 'number') throw new Error(`${where}.admitPerSecond must be a number`);
    const rate = admitPerSecondProblem(admitPerSecond);
    if (rate !== undefined) throw new Error(`${where}.admitPerSecond ${rate}`);
    const protectedServiceIds = raw.protectedServiceIds ?? [];
    if (!Array.isArray(protectedServiceIds) || !protectedServiceIds.every((id) => typeof id === 'string' && ID.test(id))) throw new Error(`${where}.protectedServiceIds must be a list of service ids`);
    const unknown = (protectedServiceIds as string[]).find((id) => !services.has(id));
    if (unknown !== undefined) throw new Error(`${where}.protectedServiceIds names "${unknown}", which is not a service of the policy`);
    const maxActive = raw.maxActive ?? null;
    if (maxActive !== null && (typeof maxActive !== 'number' || !Number.isSafeInteger(maxActive) || maxActive < 1)) throw new Error(`${where}.maxActive must be a whole number of at least 1 (or absent: no limit)`);
    const active = raw.active ?? true;
    if (typeof active !== 'boolean') throw new Error(`${where}.active must be true or false`);
    rooms.set(roomId, {
      roomId,
      admitPerSecond,
      admissionTtlSeconds: credits(raw.admissionTtlSeconds, `${where}.admissionTtlSeconds`),
      protectedServiceIds: [...(protectedServiceIds as string[])],
      maxActive,
      active,
    });
  }
  return rooms;
}

function parseRateLimits(limitsIn: unknown): Record<RateLimitGroup, RateLimitPolicy> {
  if (!isObject(limitsIn)) throw new Error(`\`rateLimits\` must be a mapping of route groups (${RATE_LIMIT_GROUPS.join(', ')}) to {max, windowSeconds}`);
  onlyKeys(limitsIn, RATE_LIMIT_GROUPS, 'rateLimits');
  const limits = {} as Record<RateLimitGroup, RateLimitPolicy>;
  for (const group of RATE_LIMIT_GROUPS) {
    const raw = limitsIn[group];
    if (raw === undefined) {
      limits[group] = DEFAULT_RATE_LIMIT;
      continue;
    }
    const where = `rateLimits.${group}`;
    if (!isObject(raw)) throw new Error(`${where} must be a mapping with max and windowSeconds`);
    onlyKeys(raw, ['max', 'windowSeconds'], where);
    limits[group] = Object.freeze({ max: credits(raw.max, `${where}.max`), windowSeconds: positiveNumber(raw.windowSeconds ?? DEFAULT_RATE_LIMIT.windowSeconds, `${where}.windowSeconds`, 86_400) });
  }
  return Object.freeze(limits);
}

/** Credits one use of a service costs by the policy; undefined for a service the policy does not know. */
export function priceOf(policy: BillingPolicy, serviceId: string): number | undefined {
  return policy.services.get(serviceId)?.creditsPerUse;
}
