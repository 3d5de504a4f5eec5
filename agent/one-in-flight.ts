/**
 * A periodic send (a heartbeat, a GPU sample) that never piles up: one run at a time, and a
 * request while one is in flight only marks that another is wanted, run once the current one
 * returns. However many ticks come while the controller or nvidia-smi is slow, at most one run
 * waits, and it reads the newest state when it starts. Never a queue.
 */
export class OneInFlight {
  private inFlight?: Promise<void>;
  private again = false;
  private stopped = false;

  /** `run` reads what it sends when it starts; a rejection goes to `onError` and stops nothing. */
  constructor(
    private readonly run: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Run now, or once more after the run in flight. */
  request(): void {
    if (this.stopped) return;
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = this.loop();
  }

  /** No more runs; the one in flight, if any, finishes. Resolves when it has. */
  stop(): Promise<void> {
    this.stopped = true;
    this.again = false;
    return this.inFlight ?? Promise.resolve();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.run();
      } catch (err) {
        this.onError(err);
      }
    } while (this.again && !this.stopped);
    this.inFlight = undefined;
  }
}
