// haat reconcile: every invariant of docs/invariants.md; exit 0 only when all hold (otherwise exit 1,
// invariant_violation, with every check and its offending rows). Always allowed, in maintenance too.
import type { Command } from 'commander';
import { reconcile } from '../../db/reconcile.ts';
import { toJsonText } from '../../domain/json.ts';
import { HaatError } from '../../errors.ts';
import { type BaseDeps, buildDeps } from '../context.ts';
import { table } from '../output.ts';

export function registerReconcileCommand(program: Command, base: BaseDeps): void {
  program
    .command('reconcile')
    .description('check every invariant (docs/invariants.md); exit 0 only when all hold')
    .action(async (_o: unknown, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const checks = await deps.withDatabase((db) => reconcile(db.pool));
      const failed = checks.filter((c) => !c.ok);
      const human = () =>
        [
          table(
            ['#', 'CHECK', 'RESULT', 'QUERY MS'],
            checks.map((c) => [String(c.invariant), c.name, c.ok ? 'ok' : `${c.violations.length} violation(s)`, String(c.ms)]),
          ),
          ...failed.flatMap((c) => [`\n${c.name}:`, ...c.violations.slice(0, 50).map((v) => `  ${toJsonText(v)}`)]),
        ].join('\n');
      if (failed.length === 0) {
        deps.output.result({ ok: true, checks }, human);
        return;
      }
      if (!deps.output.json) deps.io.stdout.write(`${human()}\n`);
      throw new HaatError('invariant_violation', `${failed.length} invariant(s) do not hold: ${failed.map((c) => c.name).join(', ')}`, {
        ok: false,
        checks,
      });
    });
}
