/**
 * Fixed log-linear buckets for webhook attempt latencies (whole milliseconds), in the manner of an
 * HDR histogram with three significant bits: every value below 16 ms has a bucket of its own, and
 * each power of two above is split into 8 equal buckets, so a bucket is never wider than 12.5 %
 * of the values in it. Values from 2^20 ms (about 17.5 minutes, above WEBHOOK_TIMEOUT_MS' maximum
 * of 10 minutes) on share the last bucket.
 *
 * A histogram is a run of `LATENCY_BUCKETS` counters in a caller's Uint32Array, so one flat typed
 * array holds a histogram per second (src/console/series.ts): recording is an index computation and
 * one increment, clearing a second is one `fill`, merging seconds is adding counters. Hand-written:
 * hdr-histogram-js and tdigest make one object (and its arrays) per histogram, and neither merges
 * or clears cheaper than this; the console needs nothing else from them.
 * @see https://hdrhistogram.github.io/HdrHistogram/ (the bucket layout's idea)
 */

/** Values below this are exact: their bucket holds that value alone. */
const EXACT_BELOW = 16;
/** log2(EXACT_BELOW) */
const EXACT_BITS = 4;
/** Buckets per power of two above EXACT_BELOW (3 bits). */
const SUB_BUCKETS = 8;
const SUB_BITS = 3;
/** The first power of two whose values all share the last bucket. */
const TOP_BITS = 20;
export const MAX_TRACKED_MS = 2 ** TOP_BITS - 1;
export const LATENCY_BUCKETS = EXACT_BELOW + (TOP_BITS - EXACT_BITS) * SUB_BUCKETS;

/** The bucket of a latency in ms: fractions round up (0.4 ms is "at most 1 ms"), negatives count as 0. */
export function latencyBucket(ms: number): number {
  const v = ms > 0 ? Math.min(Math.ceil(ms), MAX_TRACKED_MS) : 0;
  if (v < EXACT_BELOW) return v;
  const power = 31 - Math.clz32(v);
  return EXACT_BELOW + (power - EXACT_BITS) * SUB_BUCKETS + ((v >>> (power - SUB_BITS)) & (SUB_BUCKETS - 1));
}

/** The largest whole ms a bucket holds: what a percentile falling in it is reported as ("at most"). */
export function bucketUpperMs(bucket: number): number {
  if (bucket < EXACT_BELOW) return bucket;
  const power = EXACT_BITS + Math.floor((bucket - EXACT_BELOW) / SUB_BUCKETS);
  const sub = (bucket - EXACT_BELOW) % SUB_BUCKETS;
  return ((SUB_BUCKETS + sub + 1) << (power - SUB_BITS)) - 1;
}

/**
 * The p-th percentile (0–100] of the histogram in `counts` from `offset`, nearest rank: the upper
 * bound of the bucket holding the ⌈p·n/100⌉-th smallest value; null when it is empty.
 */
export function percentileMs(counts: ArrayLike<number>, p: number, offset = 0): number | null {
  let total = 0;
  for (let b = 0; b < LATENCY_BUCKETS; b++) total += counts[offset + b] as number;
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let seen = 0;
  for (let b = 0; b < LATENCY_BUCKETS; b++) {
    seen += counts[offset + b] as number;
    if (seen >= rank) return bucketUpperMs(b);
  }
  return bucketUpperMs(LATENCY_BUCKETS - 1);
}
