/**
 * The signals a process stops on, and how a repeat is told from a second signal. A signal sent to
 * a process group reaches each of its processes, so a process can get one stop signal twice within
 * milliseconds: GNU `timeout` signals its child and then the child's group, `kill -- -<pgid>` and
 * systemd's default `KillMode=control-group` signal every process of the group, and a cluster's
 * workers get the group's signal and the one their primary passes on. Before 2026-12-05 the
 * second of those was taken for an operator's second signal, which ends a process at once: the
 * drain was skipped (a user test: a cluster stopped with `timeout` left its pending intents and
 * webhooks to the next start, exit 0). Now a stop signal within SAME_STOP_MS of the first is the
 * same stop; one later is a second signal.
 */

/** The signals a process shuts down on, draining first (close-with-grace's, but for the ones a crash sends). */
export const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/**
 * A stop signal this soon after the first is the same stop (a process group's, reaching a process
 * twice); later, it is a second signal, which ends the process at once. Well above the
 * milliseconds between a group's deliveries on a busy machine, well below two deliberate presses
 * of Ctrl-C.
 */
export const SAME_STOP_MS = 500;

/** What a stop signal is: the first, the same stop again (within SAME_STOP_MS of the first), or a second signal. */
export type StopKind = 'first' | 'same' | 'second';

/** Calls `onStop` for every stop signal this process gets, saying which kind it is. */
export function watchStopSignals(onStop: (signal: StopSignal, kind: StopKind) => void, now: () => number = Date.now): void {
  let firstAt: number | undefined;
  for (const signal of STOP_SIGNALS) {
    process.on(signal, () => {
      const at = now();
      if (firstAt === undefined) {
        firstAt = at;
        onStop(signal, 'first');
      } else {
        onStop(signal, at - firstAt < SAME_STOP_MS ? 'same' : 'second');
      }
    });
  }
}

/** The line of a repeat taken as the same stop. */
export function sameStopMessage(signal: StopSignal): string {
  return `${signal} within ${SAME_STOP_MS} ms of the first stop signal: the same stop (a process group's signal reaches each of its processes), not a second signal`;
}
