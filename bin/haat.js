#!/usr/bin/env node
// The `haat` command. Plain JavaScript on purpose: it turns on Node's compile cache (under the OS
// temp folder) before the first TypeScript module loads, so later starts skip type stripping and
// compiling of haat and its libraries; main.ts then loads only the command being run.
import module from 'node:module';

module.enableCompileCache?.();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
