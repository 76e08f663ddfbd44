// Reactions are idempotent per user, message and emoji: a duplicate add (or a
// remove of an absent one) fans out nothing.
import assert from 'node:assert/strict';
import { main, log, waitFor, record, ack, assertOK, joinedPair, sleep } from './lib.mjs';

main(async () => {
  const { alice, bob } = await joinedPair('c4');
  const m = assertOK(await ack(alice, 'send_message', { chatId: 'c4', content: 'react to me', messageType: 'TEXT', tempId: 'r-1' }), 'send');
  const aliceR = record(alice, 'reaction_updated');
  const bobR = record(bob, 'reaction_updated');
  const r = { chatId: 'c4', messageId: m.messageId, emoji: '👍' };

  const p1 = waitFor(alice, 'reaction_updated');
  log('first add ack', assertOK(await ack(bob, 'add_reaction', r), 'first add'));
  const u1 = await p1;
  log('reaction_updated', u1);
  assert.equal(u1.action, 'added');
  assert.equal(u1.userId, 'bob');
  assert.equal(u1.emoji, '👍');
  assert.equal(u1.messageId, m.messageId);
  assert.equal(typeof u1.eventId, 'string');

  log('duplicate add ack', assertOK(await ack(bob, 'add_reaction', r), 'duplicate add (idempotent, not an error)'));
  await sleep(500);
  assert.equal(aliceR.length, 1, 'a duplicate add fans out nothing (alice)');
  assert.equal(bobR.length, 1, 'a duplicate add fans out nothing (bob)');

  const p2 = waitFor(alice, 'reaction_updated', 3000, (u) => u.action === 'removed');
  assertOK(await ack(bob, 'remove_reaction', r), 'remove');
  log('reaction_updated', await p2);
  assertOK(await ack(bob, 'remove_reaction', r), 'second remove (idempotent)');
  await sleep(500);
  log('alice reaction_updated', aliceR);
  assert.equal(aliceR.length, 2, 'added, removed, and nothing for the second remove');
  assert.equal(bobR.length, 2);

  // Another user's same emoji is a change.
  const u3P = waitFor(bob, 'reaction_updated', 3000, (u) => u.userId === 'alice');
  assertOK(await ack(alice, 'add_reaction', r), "alice's own 👍");
  const u3 = await u3P;
  log('reaction_updated', u3);
  assert.equal(u3.action, 'added');
  alice.disconnect();
  bob.disconnect();
});
