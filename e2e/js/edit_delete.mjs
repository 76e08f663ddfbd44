// Only the author edits or deletes a message: others get FORBIDDEN; the
// author's edit and delete fan out message_edited / message_deleted.
import assert from 'node:assert/strict';
import { main, log, waitFor, ack, assertOK, assertRefusal, joinedPair, ISO_MS } from './lib.mjs';

main(async () => {
  const { alice, bob } = await joinedPair('c2');
  const m = assertOK(await ack(alice, 'send_message', { chatId: 'c2', content: 'original', messageType: 'TEXT', tempId: 'e-1' }), 'alice send');

  const be = await ack(bob, 'edit_message', { chatId: 'c2', messageId: m.messageId, content: 'hijacked' });
  log("bob edits alice's message", be);
  assertRefusal(be, 'FORBIDDEN', 'edit by another user');
  const bd = await ack(bob, 'delete_message', { chatId: 'c2', messageId: m.messageId });
  log("bob deletes alice's message", bd);
  assertRefusal(bd, 'FORBIDDEN', 'delete by another user');
  const errP = waitFor(bob, 'error');
  bob.emit('delete_message', { chatId: 'c2', messageId: m.messageId });
  const e = await errP;
  log('error event without ack', e);
  assert.equal(e.code, 'FORBIDDEN');
  assert.equal(e.event, 'delete_message');

  const editedP = Promise.all([waitFor(alice, 'message_edited'), waitFor(bob, 'message_edited')]);
  assertOK(await ack(alice, 'edit_message', { chatId: 'c2', messageId: m.messageId, content: 'edited' }), 'author edit');
  const [ea, eb] = await editedP;
  log('message_edited', ea);
  assert.deepEqual(ea, eb, 'both see the same message_edited');
  assert.equal(ea.chatId, 'c2');
  assert.equal(ea.messageId, m.messageId);
  assert.equal(ea.content, 'edited');
  assert.equal(ea.editorId, 'alice');
  assert.match(ea.editedAt, ISO_MS);
  assert.equal(typeof ea.eventId, 'string');
  assert.notEqual(ea.eventId, m.eventId);

  const deletedP = Promise.all([waitFor(alice, 'message_deleted'), waitFor(bob, 'message_deleted')]);
  assertOK(await ack(alice, 'delete_message', { chatId: 'c2', messageId: m.messageId }), 'author delete');
  const [da, db] = await deletedP;
  log('message_deleted', da);
  assert.deepEqual(da, db);
  assert.equal(da.messageId, m.messageId);
  assert.equal(da.deletedBy, 'alice');
  assert.match(da.deletedAt, ISO_MS);

  const again = await ack(alice, 'edit_message', { chatId: 'c2', messageId: m.messageId, content: 'too late' });
  log('edit after delete', again);
  assertRefusal(again, 'NOT_FOUND', 'edit of a deleted message');
  const unknown = await ack(alice, 'delete_message', { chatId: 'c2', messageId: 'no-such-message' });
  log('delete of an unknown message', unknown);
  assertRefusal(unknown, 'NOT_FOUND', 'delete of an unknown message');
  alice.disconnect();
  bob.disconnect();
});
