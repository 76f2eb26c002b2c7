#!/usr/bin/env node
// Kept for callers of the old path: the entry point is bin/haat.js.
await import('./haat.js');
