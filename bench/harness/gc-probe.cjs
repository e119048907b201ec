/**
 * Preloaded (`node --expose-gc --require bench/harness/gc-probe.cjs`) into a server the memory
 * benchmark measures: on SIGWINCH (not SIGUSR2, which close-with-grace takes as a shutdown) it runs full GCs and writes process.memoryUsage() as JSON to
 * $BENCH_MEM_FILE (atomically, by rename), so heap figures are live objects, not garbage.
 */
'use strict';
const { writeFileSync, renameSync } = require('node:fs');
const { writeHeapSnapshot } = require('node:v8');

const file = process.env.BENCH_MEM_FILE;
if (file && typeof globalThis.gc === 'function') {
  process.on('SIGWINCH', () => {
    globalThis.gc();
    globalThis.gc();
    writeFileSync(`${file}.tmp`, JSON.stringify({ ...process.memoryUsage(), at: Date.now() }));
    renameSync(`${file}.tmp`, file);
    // For a closer look at what each session holds: BENCH_HEAP_SNAPSHOTS=<dir> also writes a heap snapshot per probe there.
    const dir = process.env.BENCH_HEAP_SNAPSHOTS;
    if (dir) writeHeapSnapshot(`${dir}/${require('node:path').basename(file, '.json')}-${Date.now()}.heapsnapshot`);
  });
}
