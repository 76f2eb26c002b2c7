// haat demo [--keep]: the scripted tour of src/demo on a fresh database (docs/contract.md, The demo).
// Each step prints its claim, what it did and saw, and ✔ or ✘; exit 0 only when every check holds,
// otherwise exit 1 demo_failed. --json: {"ok", "steps": [{name, claim, ok, details}], …} once it is
// done; on failure the same document with "ok": false and the error beside it.
import type { Command } from 'commander';
import {
  colorWanted,
  createStyle,
  isTerminal,
  renderRunning,
  renderSetup,
  renderStep,
  renderSummary,
  renderTitle,
} from '../../demo/render.ts';
import { runDemo, tour } from '../../demo/run-demo.ts';
import { HaatError } from '../../errors.ts';
import { type BaseDeps, buildDeps } from '../context.ts';

export function registerDemoCommands(program: Command, base: BaseDeps): void {
  program
    .command('demo')
    .description('a scripted tour on a fresh database that shows each guarantee holding')
    .option('--keep', 'keep the demo database afterwards, and say how to reach it')
    .action(async (opts: { keep?: boolean }, command: Command) => {
      const deps = buildDeps(base, command, 'warn');
      const keep = opts.keep === true;
      const human = !deps.output.json;
      const live = human && isTerminal(deps.io.stdout);
      const style = createStyle(human && colorWanted(deps.io.stdout, deps.io.env));
      const print = (text: string) => {
        if (human) deps.io.stdout.write(text);
      };
      print(renderTitle(tour.length));
      const report = await runDemo({
        config: deps.config,
        env: deps.io.env,
        log: deps.log,
        keep,
        progress: {
          ready: (setup) => print(renderSetup(setup, keep)),
          stepStarted: (index, step) => {
            if (live) print(renderRunning(index, step, style));
          },
          stepFinished: (index, result) => print(`${live ? '\r\x1b[2K' : ''}${renderStep(index, result, style)}`),
          note: (text) => deps.io.stderr.write(`${live ? '\n' : ''}${text}\n`),
        },
      });
      const commands = program.commands.map((c) => c.name());
      if (report.ok) {
        deps.output.result(report, () => renderSummary(report, tour.length, style, commands));
        return;
      }
      print(renderSummary(report, tour.length, style, commands));
      const failed = report.steps.filter((s) => !s.ok).map((s) => s.name);
      // The contract's document ({"ok": false, "steps"}) with the error beside it, as every failure has.
      throw new HaatError('demo_failed', `${failed.length} of ${tour.length} guarantees did not hold: ${failed.join(', ')}`, report, {
        document: { ...report },
      });
    });
}
