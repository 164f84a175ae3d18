import { validationFailed } from '../core/errors.ts';

/**
 * Reading the console's HTML form fields (every value a string) into the values the services
 * take, with the bounds the APIs' schemas use, so a form can never make what the API would refuse.
 * A bad field throws VALIDATION_FAILED naming it; the page shows the message beside the form.
 */

export type FormBody = Readonly<Record<string, string>>;

export function text(body: FormBody, name: string, options: { max: number; required?: boolean; pattern?: RegExp; rule?: string }): string | undefined {
  const value = (body[name] ?? '').trim();
  if (value === '') {
    if (options.required === true) throw validationFailed([{ field: name, rule: 'required', message: `${name} is required` }]);
    return undefined;
  }
  if (value.length > options.max) throw validationFailed([{ field: name, rule: 'maxLength', message: `${name} must be at most ${options.max} characters` }]);
  if (options.pattern !== undefined && !options.pattern.test(value)) throw validationFailed([{ field: name, rule: 'pattern', message: `${name} must be ${options.rule ?? 'valid'}` }]);
  return value;
}

export function integer(body: FormBody, name: string, options: { min: number; max: number; required?: boolean }): number | undefined {
  const value = (body[name] ?? '').trim();
  if (value === '') {
    if (options.required === true) throw validationFailed([{ field: name, rule: 'required', message: `${name} is required` }]);
    return undefined;
  }
  const n = /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < options.min || n > options.max) {
    throw validationFailed([{ field: name, rule: 'range', message: `${name} must be a whole number from ${options.min} to ${options.max}` }]);
  }
  return n;
}

export function oneOf<T extends string>(body: FormBody, name: string, choices: readonly T[]): T | undefined {
  const value = (body[name] ?? '').trim();
  if (value === '') return undefined;
  if (!(choices as readonly string[]).includes(value)) throw validationFailed([{ field: name, rule: 'enum', message: `${name} must be one of ${choices.join(', ')}` }]);
  return value as T;
}

/** An absolute http(s) URL of at most 2048 characters (the APIs' WebhookUrl). */
export function httpUrl(body: FormBody, name: string, required = false): string | undefined {
  const value = text(body, name, { max: 2048, required });
  if (value === undefined) return undefined;
  let ok: boolean;
  try {
    const url = new URL(value);
    ok = url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    ok = false;
  }
  if (!ok) throw validationFailed([{ field: name, rule: 'format', message: `${name} must be an absolute http(s) URL` }]);
  return value;
}

/** `application/x-www-form-urlencoded` into a plain object (the last of repeated names wins). */
export function parseForm(body: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, value] of new URLSearchParams(body)) out[key] = value;
  return out;
}
