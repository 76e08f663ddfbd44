// Step protocol between a scenario and its Go test (e2e/steps_test.go, the
// one runner of every script the test talks to while it runs): the script
// prints "@<MARK>" lines (the Go test waits for them) and waits for lines the
// Go test writes to its stdin ("<COMMAND> [argument]"); the test closes stdin
// when it ends the run.
import readline from 'node:readline';
import { sleep } from './lib.mjs';

const received = []; // lines from the Go test, in order
const waiters = [];
const input = readline.createInterface({ input: process.stdin });
input.on('line', (l) => {
  received.push(l.trim());
  for (const w of waiters.splice(0)) w();
});

/** Resolves once the Go test has closed stdin (the end of the run). */
export const stdinClosed = new Promise((resolve) => input.on('close', resolve));

/** Prints a marker the Go test waits for. */
export function mark(name) {
  console.log(`@${name}`);
}

/** Resolves with the argument of the first line "<command> ..." (or '') from the Go test. */
export async function command(name) {
  for (;;) {
    const i = received.findIndex((l) => l === name || l.startsWith(name + ' '));
    if (i >= 0) {
      const l = received.splice(i, 1)[0];
      return l.slice(name.length).trim();
    }
    await new Promise((r) => waiters.push(r));
  }
}

/** Resolves true once cond() holds (checked every 20 ms), false after ms. */
export async function until(cond, ms) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}
