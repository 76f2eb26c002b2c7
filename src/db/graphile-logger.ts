// Adapts the logger of graphile-worker and graphile-migrate (@graphile/logger) to our pino root,
// so their lines carry the same fields (component, task, jobId) as ours. Each library brings its
// own copy of the Logger class; both accept this factory.
import type { Logger } from '../log.ts';

type Scope = { label?: string; workerId?: string; taskIdentifier?: string; jobId?: string };
type LogFunction = (level: string, message: string, meta?: Record<string, unknown>) => void;

export function graphileLogFactory(log: Logger): (scope: Partial<Scope>) => LogFunction {
  return (scope) => {
    const bindings: Record<string, string> = {};
    if (scope.label) bindings.scope = scope.label;
    if (scope.workerId) bindings.workerId = scope.workerId;
    if (scope.taskIdentifier) bindings.task = scope.taskIdentifier;
    if (scope.jobId) bindings.jobId = scope.jobId;
    const child = Object.keys(bindings).length > 0 ? log.child(bindings) : log;
    return (level, message, meta) => {
      const fields = meta ?? {};
      const error = fields.error as { expectedRetry?: unknown; message?: unknown } | undefined;
      const job = fields.job as { id?: unknown; attempts?: unknown; max_attempts?: unknown } | undefined;
      if (fields.failure === true && error?.expectedRetry === true && Number(job?.attempts) < Number(job?.max_attempts)) {
        // A job that asked to be retried (an early event, maintenance) and will be: not a failure
        // to alert on. On its last attempt it is one, and is logged as such below.
        child.info(
          { jobId: String(job?.id), attempt: job?.attempts, maxAttempts: job?.max_attempts },
          `job will be retried: ${String(error.message)}`,
        );
        return;
      }
      // A job is logged by its id and attempt, never its whole row (payloads can be large and hold
      // buyers' data); a routine completion is debug, not info.
      const { job: _row, ...rest } = fields;
      const slim = job ? { ...rest, jobId: String(job.id), attempt: job.attempts } : rest;
      if (level === 'error') child.error(slim, message);
      else if (level === 'warning') child.warn(slim, message);
      else if (level === 'info' && !message.startsWith('Completed task')) child.info(slim, message);
      else child.debug(slim, message);
    };
  };
}
