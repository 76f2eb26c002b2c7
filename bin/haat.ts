#!/usr/bin/env node
// The old entry point, kept for one reason: `npx haat` caches the bin link it first saw, and a
// cache made before the entry moved to bin/haat.js still points here. Use bin/haat.js.
await import('./haat.js');
