// A debug-level pino logger that keeps its lines, parsed, for a test to read.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from '../../src/log.ts';

export type LogLine = { level: number; msg: string; jobId?: string; job?: { id: string } } & Record<string, unknown>;

export function memoryLog(): { lines: LogLine[]; log: Logger } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, log: pino({ level: 'debug' }, stream) };
}
