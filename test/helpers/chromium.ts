import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Chromium for browser tests (Playwright's `chromium.launch({ executablePath })`), from the Debian
 * package `chromium` (`apt-get install -y --no-install-recommends chromium`, /usr/bin/chromium).
 * Tests that need it are skipped without it locally, and fail in CI (CI set) rather than pass unseen.
 */

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** /usr/bin/chromium, else `chromium` on PATH; undefined when there is neither. */
export function findChromium(): string | undefined {
  const candidates = ['/usr/bin/chromium', ...(process.env.PATH ?? '').split(delimiter).filter((dir) => dir !== '').map((dir) => join(dir, 'chromium'))];
  return candidates.find(executable);
}

export const chromiumPath = findChromium();
export const inCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
export const CHROMIUM_MISSING =
  'chromium is not installed (neither /usr/bin/chromium nor `chromium` on PATH) and CI is set: install it with `apt-get install -y --no-install-recommends chromium` (Debian package chromium, /usr/bin/chromium)';
