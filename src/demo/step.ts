// One step of `haat demo`: a guarantee (its claim), a small function that does something real and
// reports what it did and saw, and the checks behind its ✔, each a value read back from the database
// or a process compared with what the guarantee says it must be. A step that throws, or records no
// check, has not shown anything: it fails. A failing step never stops the tour.
import { isDeepStrictEqual } from 'node:util';
import type { DemoContext } from './context.ts';

/** What a step did and what it saw: one line each, for the operator. */
export type Seen = { readonly did: string; readonly saw: string };

export type CheckResult = { readonly check: string; readonly ok: boolean; readonly expected: unknown; readonly actual: unknown };

/** Records one check: `actual` must equal `expected` (deep, strict). Returns whether it did. */
export type Check = (what: string, actual: unknown, expected: unknown) => boolean;

export type Step = {
  /** snake_case, stable: scripts and tests select steps by it. */
  readonly name: string;
  readonly claim: string;
  run(ctx: DemoContext, check: Check): Promise<Seen>;
};

export type StepResult = {
  readonly name: string;
  readonly claim: string;
  readonly ok: boolean;
  readonly details: {
    readonly did: string;
    readonly saw: string;
    readonly checks: readonly CheckResult[];
    /** Why the step could not finish, when it threw. */
    readonly error?: string;
  };
  readonly ms: number;
};

export async function runStep(step: Step, ctx: DemoContext): Promise<StepResult> {
  const checks: CheckResult[] = [];
  const check: Check = (what, actual, expected) => {
    const ok = isDeepStrictEqual(actual, expected);
    checks.push({ check: what, ok, expected, actual });
    return ok;
  };
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  try {
    if (ctx.signal.aborted) throw new Error('interrupted');
    const seen = await step.run(ctx, check);
    const ok = checks.length > 0 && checks.every((c) => c.ok);
    return { name: step.name, claim: step.claim, ok, details: { ...seen, checks }, ms: ms() };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { name: step.name, claim: step.claim, ok: false, details: { did: '', saw: '', checks, error: message }, ms: ms() };
  }
}
