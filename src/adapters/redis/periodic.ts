/**
 * Runs `check` every `intervalMs` of real time, one run at a time (a run still going when the next
 * is due skips that one), its failures ignored (a Redis away: the outage is reported elsewhere).
 * The timer does not keep the process alive. Answers the function that stops it.
 */
export function everyIntervalOnce(intervalMs: number, check: () => Promise<void>): () => void {
  let checking = false;
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    void check()
      .catch(() => undefined)
      .finally(() => (checking = false));
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
