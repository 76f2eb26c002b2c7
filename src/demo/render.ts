// What `haat demo` prints for a person: a short intro, each step numbered with its claim in bold,
// one or two indented lines of what it did and saw, ✔ green or ✘ red, a closing summary and what to
// try next. Colours only at a terminal without NO_COLOR; the same text, plain, anywhere else.
import { styleText } from 'node:util';
import { toJsonText } from '../domain/json.ts';
import type { DemoReport, DemoSetup } from './run-demo.ts';
import type { Step, StepResult } from './step.ts';

export type Style = {
  readonly bold: (text: string) => string;
  readonly green: (text: string) => string;
  readonly red: (text: string) => string;
  readonly dim: (text: string) => string;
};

export function createStyle(color: boolean): Style {
  const style = (format: 'bold' | 'green' | 'red' | 'dim') => (text: string) =>
    color ? styleText(format, text, { validateStream: false }) : text;
  return { bold: style('bold'), green: style('green'), red: style('red'), dim: style('dim') };
}

/** https://no-color.org: set and not empty. */
export function colorWanted(stdout: unknown, env: NodeJS.ProcessEnv): boolean {
  return isTerminal(stdout) && !env.NO_COLOR;
}

export function isTerminal(stream: unknown): boolean {
  return typeof stream === 'object' && stream !== null && (stream as { isTTY?: unknown }).isTTY === true;
}

const INDENT = ' '.repeat(7);
const number = (index: number) => `${String(index + 1).padStart(2)}.`;

export function renderTitle(steps: number): string {
  return `haat demo: ${steps} guarantees, each shown with real haat processes on a fresh database and checked there\n`;
}

export function renderSetup(setup: DemoSetup, keep: boolean): string {
  const fate = keep ? 'kept at the end (--keep)' : setup.database.kind === 'embedded' ? 'removed at the end' : 'dropped at the end';
  return [
    `  database   ${setup.database.description}, ${fate}`,
    `  processes  haat worker (pid ${setup.worker.pid}), haat intake at ${setup.intake.url} (pid ${setup.intake.pid})`,
    '',
    '',
  ].join('\n');
}

/** At a terminal, while a step runs: its line without a mark (replaced when it is done). */
export function renderRunning(index: number, step: Step, style: Style): string {
  return `   ${number(index)} ${style.bold(step.claim)} ${style.dim('…')}`;
}

function show(value: unknown): string {
  return typeof value === 'string' ? value : toJsonText(value);
}

export function renderStep(index: number, result: StepResult, style: Style): string {
  const mark = result.ok ? style.green('✔') : style.red('✘');
  const lines = [` ${mark} ${number(index)} ${style.bold(result.claim)}`];
  if (result.details.did) lines.push(`${INDENT}${result.details.did}`);
  if (result.details.saw) lines.push(`${INDENT}→ ${result.details.saw}`);
  for (const c of result.details.checks.filter((c) => !c.ok)) {
    lines.push(`${INDENT}${style.red(`✘ ${c.check}: expected ${show(c.expected)}, got ${show(c.actual)}`)}`);
  }
  if (result.details.error) lines.push(`${INDENT}${style.red(`✘ could not finish: ${result.details.error}`)}`);
  if (!result.ok && result.details.checks.length === 0 && !result.details.error)
    lines.push(`${INDENT}${style.red('✘ nothing was checked')}`);
  return `${lines.join('\n')}\n\n`;
}

/** The closing lines: how many held, how long it took, and what to try next. */
export function renderSummary(report: DemoReport, total: number, style: Style, commands: readonly string[]): string {
  const held = report.steps.filter((s) => s.ok).length;
  const failed = report.steps.filter((s) => !s.ok).map((s) => s.name);
  const count = `${held}/${total} guarantees held`;
  const lines = [
    report.ok
      ? `${style.green(style.bold(count))} in ${report.seconds} s.`
      : `${style.red(style.bold(count))} in ${report.seconds} s${failed.length ? `; did not hold: ${failed.join(', ')}` : ''}.`,
  ];
  const explore = ['order list', ...(commands.includes('events') ? ['events list'] : []), 'audit', 'reconcile'];
  if (report.kept) {
    const prefix = `${report.kept.env} npx haat`;
    lines.push('', 'The database is kept. Look around in it with the same environment:');
    for (const command of explore) {
      const note = command === 'reconcile' ? `   ${style.dim(`(exits 1: ${report.kept.corrupted_sku} was corrupted on purpose)`)}` : '';
      lines.push(`  ${prefix} ${command}${note}`);
    }
    if (report.kept.env.includes('***')) lines.push(`  (put the password back in place of ***)`);
    lines.push(`Remove it when done: ${report.kept.remove}`);
  } else {
    lines.push(
      '',
      'Try next:',
      `  npx haat demo --keep   keeps the demo's database, to look around in it (${explore.map((c) => `haat ${c}`).join(', ')})`,
      '  npm start              runs haat for real: database, migrations, worker, cron and webhook intake',
    );
  }
  return `${lines.join('\n')}\n`;
}
