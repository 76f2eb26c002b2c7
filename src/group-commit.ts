// Group commit: callers submit one item each and wait; the items that arrive while earlier batches are
// being stored (or within a linger) go together to one `run`, and each caller gets its own item's
// result. The intake stores webhooks this way, the worker applies commands this way.

/** One item's result: a value, or an error for that caller alone. */
export type Settled<R> = { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: unknown };

export type GroupCommitOptions = {
  /**
   * How long the first item of a batch waits for others (ms). 0: until the items submitted in the
   * same turn of the event loop are in; under load, batches form from what arrives while the batches
   * in flight run.
   */
  readonly lingerMs: number;
  /** The most items in one batch. */
  readonly maxBatch: number;
  /** The most batches running at once. */
  readonly maxInFlight: number;
};

export type GroupCommit<I, R> = {
  submit(item: I): Promise<R>;
  /** Runs what is waiting and resolves when no batch is running. */
  close(): Promise<void>;
};

/**
 * `run` gets a batch and returns one Settled per item, in order; if it throws, every item of the
 * batch fails with that error.
 */
export function createGroupCommit<I, R>(
  run: (items: readonly I[]) => Promise<readonly Settled<R>[]>,
  options: GroupCommitOptions,
): GroupCommit<I, R> {
  type Waiting = { readonly item: I; resolve(value: R): void; reject(error: unknown): void };
  let waiting: Waiting[] = [];
  let timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  let inFlight = 0;
  const idle: (() => void)[] = [];

  const runBatch = async (batch: readonly Waiting[]) => {
    try {
      const results = await run(batch.map((w) => w.item));
      for (const [i, w] of batch.entries()) {
        const result = results[i];
        if (result?.ok) w.resolve(result.value);
        else w.reject(result ? result.error : new Error('the batch returned no result for this item'));
      }
    } catch (error) {
      for (const w of batch) w.reject(error);
    }
  };

  const flush = () => {
    if (timer !== undefined) {
      clearTimeout(timer as NodeJS.Timeout);
      clearImmediate(timer as NodeJS.Immediate);
    }
    timer = undefined;
    while (waiting.length > 0 && inFlight < options.maxInFlight) {
      const batch = waiting.slice(0, options.maxBatch);
      waiting = waiting.slice(options.maxBatch);
      inFlight++;
      void runBatch(batch).finally(() => {
        inFlight--;
        // Whatever arrived while this batch ran goes next, without another linger.
        if (waiting.length > 0) flush();
        else if (inFlight === 0) for (const resolve of idle.splice(0)) resolve();
      });
    }
  };

  return {
    submit: (item) =>
      new Promise<R>((resolve, reject) => {
        waiting.push({ item, resolve, reject });
        if (waiting.length >= options.maxBatch) flush();
        else if (timer === undefined && inFlight < options.maxInFlight)
          timer = options.lingerMs > 0 ? setTimeout(flush, options.lingerMs) : setImmediate(flush);
      }),
    close: async () => {
      flush();
      if (inFlight > 0 || waiting.length > 0) await new Promise<void>((resolve) => idle.push(resolve));
    },
  };
}
