// Building outcomes: a refusal is a value with a stable code, never a thrown error.
import type { Outcome, OutcomeError } from '../domain/commands.ts';

export const refuse = (code: OutcomeError['code'], message: string, details: Record<string, unknown> = {}): OutcomeError => ({
  code,
  message,
  details,
});
export const fail = (error: OutcomeError): Outcome => ({ ok: false, error });
