// What a command may touch of the outside world: its streams, whether a person is at a terminal,
// and the environment. Tests pass their own.

export type Io = {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  /** A person can answer prompts: stdin and stderr (where prompts draw) are terminals. */
  readonly interactive: boolean;
  readonly env: NodeJS.ProcessEnv;
};

export function processIo(): Io {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    interactive: Boolean(process.stdin.isTTY && process.stderr.isTTY),
    env: process.env,
  };
}
