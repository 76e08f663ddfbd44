// Typing (node with --typing-expiry 1s): a start reaches the other user only;
// a start never stopped reaches them as a stop after the expiry; an explicit
// stop arrives at once.
import assert from 'node:assert/strict';
import { main, log, waitFor, record, joinedPair, sleep } from './lib.mjs';

main(async () => {
  const { alice, bob } = await joinedPair('c3');
  const aliceTyping = record(alice, 'user_typing');
  const bobTyping = [];
  bob.on('user_typing', (t) => bobTyping.push({ ...t, at: performance.now() }));

  const t0 = performance.now();
  alice.emit('typing_start', { chatId: 'c3' });
  const start = await waitFor(bob, 'user_typing', 2000);
  log('bob sees', start);
  assert.deepEqual(start, { chatId: 'c3', userId: 'alice', isTyping: true });

  const stop = await waitFor(bob, 'user_typing', 4000);
  const after = performance.now() - t0;
  log('bob sees after expiry', stop, `${after.toFixed(0)} ms after the start`);
  assert.deepEqual(stop, { chatId: 'c3', userId: 'alice', isTyping: false });
  assert.ok(after >= 800 && after <= 3000, `expiry stop after ${after} ms; want about 1 s`);

  // An explicit start/stop pair.
  alice.emit('typing_start', { chatId: 'c3' });
  await waitFor(bob, 'user_typing', 2000, (t) => t.isTyping === true);
  const t1 = performance.now();
  alice.emit('typing_stop', { chatId: 'c3' });
  await waitFor(bob, 'user_typing', 2000, (t) => t.isTyping === false);
  const stopLatency = performance.now() - t1;
  log('explicit stop arrived after', `${stopLatency.toFixed(0)} ms`);
  assert.ok(stopLatency < 700, 'an explicit stop is not held until the expiry');

  await sleep(1300); // past another expiry: a stopped start must not expire again
  log('bob user_typing', bobTyping.map(({ at, ...t }) => t));
  log('alice user_typing', aliceTyping);
  assert.equal(bobTyping.length, 4, 'start, expiry stop, start, stop, and nothing more');
  assert.deepEqual(aliceTyping, [], 'the typist does not get her own user_typing');
  alice.disconnect();
  bob.disconnect();
});
