/**
 * TIME_SCALE (issue 15, "Load-test controls"): every simulated duration is multiplied by one
 * factor, so a 10-minute seat hold lasts 6 s in a CI run at 0.01. Durations stay whole
 * milliseconds, and a positive duration never scales to 0 (something due "later" stays later than
 * now); 0 stays 0 (immediately). Network time (HTTP timeouts, fault latencies), client-facing rate
 * limits and retention TTLs are real time and never pass through here (README, "TIME_SCALE").
 * @see issue 15 "Load-test controls"
 */

export const MIN_TIME_SCALE = 0.001;
export const MAX_TIME_SCALE = 1000;

/** `ms` simulated milliseconds at `scale`, in whole milliseconds (at least 1 when `ms` is positive). */
export function scaled(ms: number, scale: number): number {
  if (scale === 1 || ms <= 0) return ms;
  return Math.max(1, Math.round(ms * scale));
}
