// realtime admin console. Plain JavaScript, no build step, no dependencies
// but the socket.io-client bundle served beside it. Every value from the
// server goes into the page through textContent (el/text below), never as
// HTML; the Content-Security-Policy forbids inline script anyway.
'use strict';

(function () {
  const KEY_STORAGE = 'realtime-admin-key';
  const POLL_CLUSTER_MS = 1500;
  const POLL_EVENTS_MS = 2000;
  const POLL_RTM_MS = 2000;
  const MAX_EVENT_ROWS = 200;
  const MAX_LOG_LINES = 200;
  const TOAST_MS = 5000;

  const $ = (id) => document.getElementById(id);
  let apiKey = sessionStorage.getItem(KEY_STORAGE) || '';
  let timers = [];
  let self = null; // this node's info (GET /api/node)

  // el builds an element; string children become text nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function fill(tbody, rows) { tbody.replaceChildren(...rows); }

  function fmtTime(s) {
    if (!s) return '';
    const d = new Date(s);
    return isNaN(d) ? s : d.toLocaleString();
  }
  function fmtNum(n) { return n === null || n === undefined ? 'n/a' : String(n); }

  let statusTimer = null;
  function status(msg, isError) {
    const s = $('status');
    s.textContent = msg || '';
    s.className = 'status' + (msg ? ' show' : '') + (isError ? ' error' : '');
    clearTimeout(statusTimer);
    if (msg && !isError) statusTimer = setTimeout(() => status(''), 4000);
  }

  class APIError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  // api calls the server API of this node with the key.
  async function api(method, path, body) {
    const headers = { Authorization: 'Bearer ' + apiKey };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    const resp = await fetch(path, init);
    let data = null;
    try { data = await resp.json(); } catch (_) { /* empty body */ }
    if (!resp.ok) {
      const err = (data && data.error) || {};
      if (resp.status === 401) { logout('The API key was refused; log in again.'); }
      throw new APIError(resp.status, err.code || String(resp.status), err.message || resp.statusText);
    }
    return data;
  }
  const seg = encodeURIComponent;

  // act confirms, runs fn, reports.
  async function act(question, fn, done) {
    if (question && !window.confirm(question)) return;
    try {
      const r = await fn();
      if (done) status(done);
      return r;
    } catch (e) {
      status(e.message || String(e), true);
    }
  }

  // ---- login -----------------------------------------------------------

  // probeDisabled asks the node, without the key, whether its API is on.
  async function probeDisabled() {
    try {
      const resp = await fetch('config.json', { cache: 'no-store' });
      const d = await resp.json();
      return d.apiEnabled === false;
    } catch (_) { return false; /* the login reports what is wrong */ }
  }

  async function login(key) {
    apiKey = key;
    try {
      self = await api('GET', '/api/node');
    } catch (e) {
      apiKey = '';
      sessionStorage.removeItem(KEY_STORAGE);
      if (e.code === 'API_DISABLED') { $('api-disabled').hidden = false; }
      status(e.status === 401 ? 'Wrong API key.' : e.message, true);
      return false;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    $('nav').hidden = false;
    $('logout').hidden = false;
    $('whoami').textContent = 'node ' + self.id;
    if (!location.hash || location.hash === '#login') location.hash = '#cluster';
    route();
    return true;
  }

  function logout(msg) {
    if (socket) socket.disconnect();
    apiKey = '';
    self = null;
    sessionStorage.removeItem(KEY_STORAGE);
    $('nav').hidden = true;
    $('logout').hidden = true;
    $('whoami').textContent = '';
    stopTimers();
    show('login');
    if (msg) status(msg, true);
  }

  // ---- routing ---------------------------------------------------------

  function stopTimers() { timers.forEach(clearInterval); timers = []; }
  function every(ms, fn) { fn(); timers.push(setInterval(fn, ms)); }

  function show(page) {
    for (const s of document.querySelectorAll('.page')) s.hidden = s.id !== 'page-' + page;
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.page === page);
  }

  const pages = {
    cluster: () => every(POLL_CLUSTER_MS, refreshCluster),
    user: () => {},
    chat: () => {},
    rtm: () => every(POLL_RTM_MS, () => refreshRTM(rtmAfter)),
    events: startEvents,
    test: initTest,
  };

  function route() {
    stopTimers();
    if (!apiKey) { show('login'); return; }
    const page = (location.hash || '#cluster').slice(1);
    const p = pages[page] ? page : 'cluster';
    show(p);
    pages[p]();
  }

  // ---- cluster ---------------------------------------------------------

  async function refreshCluster() {
    let list, stats;
    try {
      [list, stats] = await Promise.all([api('GET', '/api/nodes'), api('GET', '/api/stats')]);
    } catch (e) { status(e.message, true); return; }
    const c = stats.cluster;
    $('cluster-totals').replaceChildren(
      ...[['Nodes', c.nodes], ['Connections', c.connections], ['Users', c.users], ['Chats', c.chats]]
        .map(([k, v]) => el('div', { class: 'card' }, el('b', {}, fmtNum(v)), el('span', {}, k))));
    fill($('nodes-table').tBodies[0], list.nodes.map((n) => el('tr', { 'data-node': n.id },
      el('td', {}, n.id, n.id === list.self ? el('span', { class: 'muted small' }, ' (this node)') : null,
        n.apiUrlRefused ? el('span', { class: 'pill bad', title: n.apiUrlRefused }, 'apiUrl refused') : null),
      el('td', {}, n.version),
      el('td', {}, el('span', { class: 'pill ' + (n.ready ? 'ok' : 'bad') }, n.draining ? 'draining' : n.ready ? 'ready' : 'not ready')),
      el('td', { class: 'num' }, n.connections), el('td', { class: 'num' }, n.users), el('td', { class: 'num' }, n.chats),
      el('td', { class: 'num' }, n.messagesInPerSec), el('td', { class: 'num' }, n.messagesOutPerSec),
      el('td', { class: 'num' }, n.fanoutP99Ms === null || n.fanoutP99Ms === undefined ? 'n/a' : n.fanoutP99Ms + ' ms'),
      el('td', { class: 'num' }, n.goroutines), el('td', {}, fmtTime(n.startedAt)))));
    $('cluster-updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  }

  // ---- user ------------------------------------------------------------

  let currentUser = '';
  async function lookupUser(userId) {
    currentUser = userId;
    userEvents(userId);
    let r;
    try { r = await api('GET', '/api/users/' + seg(userId) + '/connections'); } catch (e) { status(e.message, true); return; }
    $('user-disconnect-all').disabled = r.connections.length === 0;
    $('user-errors').replaceChildren(...r.errors.map((e) => el('p', { class: 'banner error' }, 'Node ' + e.node + ': ' + e.message)));
    const tbody = $('user-table').tBodies[0];
    if (r.connections.length === 0) {
      fill(tbody, [el('tr', {}, el('td', { colspan: '8', class: 'muted' }, 'No connection of ' + userId + ' anywhere in the cluster.'))]);
      return;
    }
    fill(tbody, r.connections.map((c) => el('tr', { 'data-conn': c.connId },
      el('td', {}, c.node), el('td', {}, el('code', {}, c.connId)), el('td', {}, c.remote), el('td', {}, fmtTime(c.since)),
      el('td', {}, c.namespaces.join(', ')), el('td', {}, c.chats.join(', ') || '—'), el('td', { class: 'num' }, c.queuedBytes),
      el('td', {}, el('button', {
        type: 'button', class: 'danger', 'data-action': 'disconnect',
        onclick: () => act('Disconnect connection ' + c.connId + ' of ' + userId + ' on ' + c.node + '?',
          () => api('DELETE', '/api/users/' + seg(userId) + '/connections/' + seg(c.connId)), 'Disconnected ' + c.connId + '.')
          .then(() => setTimeout(() => lookupUser(userId), 500)),
      }, 'Disconnect')))));
  }

  // userEvents shows the user's live events kept by any node (the first
  // MAX_EVENT_NODES nodes), the newest MAX_USER_EVENTS: why she was cut off.
  const MAX_EVENT_NODES = 32;
  const MAX_USER_EVENTS = 20;
  async function userEvents(userId) {
    let list;
    try { list = await api('GET', '/api/nodes'); } catch (e) { status(e.message, true); return; }
    const nodes = list.nodes.slice(0, MAX_EVENT_NODES);
    const answers = await Promise.allSettled(nodes.map((n) => api('GET', '/api/nodes/' + seg(n.id) + '/events?after=0')));
    let rows = [];
    answers.forEach((a, i) => {
      if (a.status !== 'fulfilled') return;
      for (const e of a.value.events) if (e.userId === userId) rows.push(Object.assign({ node: nodes[i].id }, e));
    });
    rows.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
    rows = rows.slice(0, MAX_USER_EVENTS);
    const tbody = $('user-events').tBodies[0];
    if (rows.length === 0) {
      fill(tbody, [el('tr', {}, el('td', { colspan: '6', class: 'muted' }, 'None kept.'))]);
      return;
    }
    fill(tbody, rows.map((e) => el('tr', {}, el('td', {}, fmtTime(e.at)), el('td', {}, e.node), el('td', {}, e.kind),
      el('td', {}, e.code || ''), el('td', {}, e.connId || ''), el('td', {}, e.detail || ''))));
  }

  function initUser() {
    $('user-form').addEventListener('submit', (ev) => { ev.preventDefault(); lookupUser($('user-id').value.trim()); });
    $('user-disconnect-all').addEventListener('click', () => {
      const u = currentUser;
      act('Disconnect every connection of ' + u + '?', () => api('DELETE', '/api/users/' + seg(u) + '/connections'),
        'Disconnected every connection of ' + u + '.').then(() => setTimeout(() => lookupUser(u), 500));
    });
    $('user-event-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const u = $('user-id').value.trim();
      if (!u) { status('Look up a user first.', true); return; }
      let data;
      try { data = JSON.parse($('user-event-data').value || 'null'); } catch (e) { status('Data is not JSON: ' + e.message, true); return; }
      const event = $('user-event-name').value.trim();
      act('Send event ' + event + ' to every connection of ' + u + '?',
        () => api('POST', '/api/users/' + seg(u) + '/events', { event, data }), 'Sent ' + event + ' to ' + u + '.');
    });
  }

  // ---- chat ------------------------------------------------------------

  let currentChat = '';
  async function openChat(chatId) {
    currentChat = chatId;
    let r;
    try { r = await api('GET', '/api/chats/' + seg(chatId)); } catch (e) { status(e.message, true); return; }
    $('chat-member-count').textContent = r.memberCount + (r.truncated ? ' (first ' + r.members.length + ' shown)' : '');
    $('chat-members').replaceChildren(...r.members.map((m) => el('li', {}, m,
      el('button', {
        type: 'button', class: 'link', 'data-action': 'remove',
        onclick: () => act('Remove ' + m + ' from ' + chatId + '? Their connections leave the chat.',
          () => api('DELETE', '/api/chats/' + seg(chatId) + '/members/' + seg(m)), 'Removed ' + m + '.').then(() => openChat(chatId)),
      }, 'remove'))));
    $('chat-online').replaceChildren(...(r.online.length ? r.online.map((o) => el('li', {}, o.userId,
      el('span', { class: 'muted' }, o.connections + (o.connections === 1 ? ' connection' : ' connections'))))
      : [el('li', { class: 'muted' }, 'nobody')]));
    fill($('chat-history').tBodies[0], r.history.slice().reverse().map((h) => {
      const d = h.data || {};
      return el('tr', {}, el('td', {}, el('code', {}, h.eventId)), el('td', {}, h.event),
        el('td', {}, d.senderName ? d.senderName + ' (' + d.senderId + ')' : (d.senderId || d.userId || '')),
        el('td', {}, d.content !== undefined ? d.content : JSON.stringify(d)));
    }));
  }

  function initChat() {
    $('chat-form').addEventListener('submit', (ev) => { ev.preventDefault(); openChat($('chat-id').value.trim()); });
    $('chat-add-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const c = currentChat, u = $('chat-add-user').value.trim();
      if (!c) { status('Open a chat first.', true); return; }
      act('Add ' + u + ' to ' + c + '?', () => api('PUT', '/api/chats/' + seg(c) + '/members/' + seg(u)), 'Added ' + u + '.')
        .then(() => openChat(c));
    });
    $('chat-post-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const c = currentChat;
      if (!c) { status('Open a chat first.', true); return; }
      const body = { senderId: $('chat-post-sender').value.trim(), senderName: $('chat-post-name').value, content: $('chat-post-content').value, messageType: 'TEXT' };
      act('Post this message to every member of ' + c + '?', () => api('POST', '/api/chats/' + seg(c) + '/messages', body), 'Posted.')
        .then(() => { $('chat-post-content').value = ''; openChat(c); });
    });
  }

  // ---- RTM -------------------------------------------------------------

  let rtmAfter = '';
  async function refreshRTM(after) {
    rtmAfter = after;
    let r;
    try { r = await api('GET', '/api/stats?limit=50' + (after ? '&after=' + seg(after) : '')); } catch (e) { status(e.message, true); return; }
    const rtm = r.rtm;
    $('rtm-disabled').hidden = !!rtm;
    $('rtm-form').hidden = !rtm;
    if (!rtm) { $('rtm-summary').replaceChildren(); fill($('rtm-profiles').tBodies[0], []); return; }
    const counts = Object.entries(rtm.profiles || {}).map(([k, v]) => k + ' ' + v).join(', ') || 'none';
    $('rtm-summary').replaceChildren(...[
      ['Leader', rtm.leader || 'none'], ['Term', rtm.term], ['This node leads', rtm.isLeader ? 'yes' : 'no'],
      ['Profiles', counts], ['Reconnects', rtm.reconnects], ['Events in / out', rtm.eventsIn + ' / ' + rtm.eventsOut],
      ['Duplicates dropped', rtm.duplicatesDropped],
    ].map(([k, v]) => el('div', { class: 'card' }, el('b', {}, fmtNum(v)), el('span', {}, k))));
    fill($('rtm-profiles').tBodies[0], rtm.profileList.map((p) => el('tr', { 'data-profile': p.profileId },
      el('td', {}, p.profileId),
      el('td', {}, el('span', { class: 'pill ' + (p.state === 'connected' ? 'ok' : 'bad') }, p.state)),
      el('td', {}, fmtTime(p.since)), el('td', {}, fmtTime(p.lastEventAt) || '—'), el('td', { class: 'num' }, p.reconnects),
      el('td', {}, el('button', {
        type: 'button', class: 'danger',
        onclick: () => act('Delete profile ' + p.profileId + '? The bridge drops its upstream connection.',
          () => api('DELETE', '/api/rtm/profiles/' + seg(p.profileId)), 'Deleted ' + p.profileId + '.').then(() => refreshRTM(rtmAfter)),
      }, 'Delete')))));
    $('rtm-next').disabled = !rtm.nextAfter;
    $('rtm-next').dataset.after = rtm.nextAfter || '';
    $('rtm-prev').disabled = !after;
  }

  function initRTM() {
    $('rtm-next').addEventListener('click', () => refreshRTM($('rtm-next').dataset.after));
    $('rtm-prev').addEventListener('click', () => refreshRTM(''));
    $('rtm-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const id = $('rtm-profile').value.trim();
      let session;
      try { session = JSON.parse($('rtm-session').value); } catch (e) { status('Session is not JSON: ' + e.message, true); return; }
      act('Store this session for profile ' + id + '? It replaces the current one.',
        () => api('PUT', '/api/rtm/profiles/' + seg(id), { session }), 'Stored the session of ' + id + '.')
        .then((r) => {
          if (r) $('rtm-session').value = ''; // the cookies are a secret: do not leave them on screen
          setTimeout(() => refreshRTM(rtmAfter), 500);
        });
    });
  }

  // ---- live events -----------------------------------------------------

  const seen = new Map(); // node -> newest seq
  let eventRows = [];
  async function startEvents() {
    try {
      const list = await api('GET', '/api/nodes');
      const sel = $('events-node');
      const was = sel.value;
      sel.replaceChildren(...list.nodes.map((n) => el('option', { value: n.id }, n.id)));
      sel.value = list.nodes.some((n) => n.id === was) ? was : list.self;
    } catch (e) { status(e.message, true); return; }
    every(POLL_EVENTS_MS, pollEvents);
  }

  async function pollEvents() {
    const node = $('events-node').value;
    if (!node) return;
    let r;
    try { r = await api('GET', '/api/nodes/' + seg(node) + '/events?after=' + (seen.get(node) || 0)); } catch (e) { status(e.message, true); return; }
    seen.set(node, r.newest);
    for (const e of r.events) eventRows.unshift(Object.assign({ node }, e));
    eventRows = eventRows.slice(0, MAX_EVENT_ROWS);
    const sampled = Object.entries(r.sampledOut || {}).filter(([, v]) => v > 0).map(([k, v]) => k + ' ' + v);
    $('events-sampled').textContent = 'Sampled: at most 20 of each kind per second are kept per node (newest 256). ' +
      (sampled.length ? 'Not kept on ' + node + ': ' + sampled.join(', ') + '.' : '');
    renderEvents();
  }

  function renderEvents() {
    const kind = $('events-kind').value;
    fill($('events-table').tBodies[0], eventRows.filter((e) => !kind || e.kind === kind).map((e) => el('tr', {},
      el('td', {}, fmtTime(e.at)), el('td', {}, e.node), el('td', {}, e.kind), el('td', {}, e.code || ''),
      el('td', {}, e.userId || ''), el('td', {}, e.connId || ''), el('td', {}, e.remote || ''), el('td', {}, e.detail || ''))));
  }

  function initEvents() {
    $('events-kind').addEventListener('change', renderEvents);
    $('events-node').addEventListener('change', () => pollEvents());
    $('events-clear').addEventListener('click', () => { eventRows = []; renderEvents(); });
  }

  // ---- test console ----------------------------------------------------

  let socket = null;
  let testReady = false;
  // The WebSocket origins the page's Content-Security-Policy lets it reach
  // (config.json's sockets): this node's public listener, then any the
  // operator configured with --console-socket-origins.
  let sockets = [];

  async function initTest() {
    if (testReady || !self) return;
    testReady = true;
    $('test-nsp').value = self.namespace || '/messenger';
    try {
      const resp = await fetch('config.json', { cache: 'no-store' });
      sockets = (await resp.json()).sockets || [];
    } catch (_) { sockets = []; }
    const urls = sockets.map((s) => s.replace(/^ws/, 'http'));
    $('test-urls').replaceChildren(...urls.map((u) => el('option', { value: u })));
    const port = (self.addr || '').split(':').pop();
    $('test-url').value = urls[0] || location.protocol + '//' + location.hostname + (port ? ':' + port : '');
  }

  // socketAllowed reports whether the policy lets the page connect to url
  // (unknown: let the browser decide).
  function socketAllowed(url) {
    if (!sockets.length) return true;
    try {
      const u = new URL(url);
      const origin = u.protocol.replace(/^http/, 'ws') + '//' + u.host;
      return sockets.includes(origin);
    } catch (_) { return false; }
  }

  function log(line) {
    const ol = $('test-log');
    ol.prepend(el('li', {}, new Date().toLocaleTimeString() + '  ' + line));
    while (ol.childElementCount > MAX_LOG_LINES) ol.lastElementChild.remove();
  }

  function toast(kind, title, body) {
    const t = el('div', { class: 'toast ' + kind, role: 'status' }, el('div', { class: 'title' }, title), el('div', { class: 'body' }, body));
    $('toasts').append(t);
    setTimeout(() => t.remove(), TOAST_MS);
  }

  function setTestState(s, ok) {
    $('test-state').textContent = s;
    $('test-state').className = 'pill' + (ok === true ? ' ok' : ok === false ? ' bad' : '');
    $('test-disconnect').disabled = !socket;
    $('test-connect').disabled = !!socket;
  }

  function connectTest() {
    if (typeof io !== 'function') { status('socket.io-client did not load.', true); return; }
    const base = $('test-url').value.trim().replace(/\/+$/, '');
    if (!socketAllowed(base)) {
      status('The console may connect only to ' + sockets.join(', ') + ' (its Content-Security-Policy); start the node with --console-socket-origins to add ' + base + '.', true);
      return;
    }
    const url = base + $('test-nsp').value.trim();
    socket = io(url, { transports: ['websocket'], auth: { token: $('test-token').value.trim() }, reconnection: false, forceNew: true });
    setTestState('connecting');
    socket.on('connect', () => { setTestState('connected', true); log('connected as ' + $('test-user').value + ' (socket id ' + socket.id + ')'); });
    socket.on('connect_error', (err) => {
      const code = err && err.data && err.data.code ? err.data.code + ': ' : '';
      log('connect_error ' + code + (err && err.message));
      setTestState('refused', false);
      socket.close(); socket = null; setTestState('refused', false);
    });
    socket.on('disconnect', (reason) => { log('disconnect: ' + reason); socket = null; setTestState('disconnected: ' + reason, false); });
    socket.onAny((event, data) => {
      log(event + ' ' + JSON.stringify(data));
      if (event === 'new_message' && data) {
        toast('msg', (data.senderName || data.senderId || 'someone') + ' in ' + data.chatId, data.content || '(' + (data.messageType || 'message') + ')');
      } else if (event === 'message_toast' && data) {
        toast('rtm', 'RTM ' + data.profileId + ' · ' + (data.fromId || ''), data.text || '');
      }
    });
  }

  function initTestForms() {
    $('test-mint').addEventListener('click', async () => {
      const userId = $('test-user').value.trim();
      const profiles = $('test-profiles').value.split(',').map((s) => s.trim()).filter(Boolean);
      try {
        const r = await api('POST', '/api/dev/tokens', { userId, name: userId, profiles });
        $('test-token').value = r.token;
        status('Minted a token for ' + userId + ' (valid until ' + fmtTime(r.expiresAt) + ').');
      } catch (e) { status(e.message, true); }
    });
    $('test-connect-form').addEventListener('submit', (ev) => { ev.preventDefault(); if (!socket) connectTest(); });
    $('test-disconnect').addEventListener('click', () => { if (socket) socket.disconnect(); });
    $('test-join-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!socket) { status('Connect first.', true); return; }
      const chatId = $('test-chat').value.trim();
      socket.emit('join_chat', { chatId }, (res) => log('join_chat ack ' + JSON.stringify(res)));
    });
    $('test-send-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!socket) { status('Connect first.', true); return; }
      const content = $('test-message').value;
      socket.emit('send_message', { chatId: $('test-chat').value.trim(), content, messageType: 'TEXT', tempId: 't' + Date.now() },
        (res) => log('send_message ack ' + JSON.stringify(res)));
      $('test-message').value = '';
    });
  }

  // ---- start -----------------------------------------------------------

  document.addEventListener('DOMContentLoaded', async () => {
    initUser(); initChat(); initRTM(); initEvents(); initTestForms();
    $('login-form').addEventListener('submit', (ev) => { ev.preventDefault(); login($('login-key').value); });
    $('logout').addEventListener('click', () => logout());
    window.addEventListener('hashchange', route);
    if (await probeDisabled()) {
      $('api-disabled').hidden = false;
      $('login-form').hidden = true;
      show('login');
      return;
    }
    if (apiKey) { await login(apiKey); } else { show('login'); }
  });
})();
