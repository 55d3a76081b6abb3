// The consortium dashboard: one page, no build step, no dependencies.
//
// The credential lives in this tab's sessionStorage and travels only in the
// Authorization header. The live stream is read with fetch() and a stream
// reader, because EventSource cannot send that header.
//
// Everything shown comes from the registrar as data and is written with
// textContent or setAttribute, never parsed as HTML: client version strings
// are whatever an agent reported.
'use strict';
(function () {
  const KEY = 'consortium.dashboard.credential';
  const ROLE_ORDER = { bootnode: 0, validator: 1, tx: 2, public: 3 };
  const MAX_EVENTS = 300;
  const PAGE = 100; // table rows per page: a thousand rows cost the page a second of layout

  const $ = (id) => document.getElementById(id);
  const st = {
    principal: '', admin: false, index: 0, offset: 0,
    nodes: new Map(), members: [], blocks: [], chain: null,
    eventKeys: new Set(), pendingEvents: [],
    rows: new Map(), page: 0, gen: 0, controller: null, scheduled: false, edges: 0, hl: '',
    dirty: { table: false, topo: false, members: false, blocks: false, chain: false, events: false },
  };
  // Timings, read by the browser test and handy in the console.
  const probe = (window.__dash = { ready: false, firstRender: 0, renders: 0, lastRender: 0, lastRenderMs: 0, messages: 0 });

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const short = (id) => (id ? id.slice(0, 8) : '');
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const serverNow = () => Date.now() + st.offset;
  const ms = (t) => (t ? Date.parse(t) : NaN);

  function dur(d) {
    const s = Math.floor(d / 1000);
    if (s < 60) return s + 's';
    const m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + String(s % 60).padStart(2, '0') + 's';
    const h = Math.floor(m / 60);
    if (h < 48) return h + 'h ' + String(m % 60).padStart(2, '0') + 'm';
    return Math.floor(h / 24) + 'd';
  }
  function ago(t) {
    const v = ms(t);
    if (!(v > 0)) return '';
    const d = serverNow() - v;
    return d < 1000 ? 'just now' : dur(d) + ' ago';
  }
  // clock is local HH:MM:SS; toLocaleTimeString is slow for hundreds of rows.
  const two = (n) => (n < 10 ? '0' : '') + n;
  function clock(t) {
    const d = new Date(ms(t));
    return isNaN(d) ? '' : two(d.getHours()) + ':' + two(d.getMinutes()) + ':' + two(d.getSeconds());
  }
  // hostPort shows the endpoint of an enode URL; the key is the node ID.
  function hostPort(u) {
    const i = u.lastIndexOf('@');
    return i < 0 ? u : u.slice(i + 1);
  }

  // ---- signing in and out

  function setConn(cls, text) {
    const c = $('conn');
    c.className = 'conn ' + cls;
    c.textContent = text;
  }

  function showLogin(msg) {
    $('app').hidden = true;
    $('logout').hidden = true;
    $('login').hidden = false;
    $('who').textContent = '';
    $('summary').textContent = '';
    $('login-error').textContent = msg || '';
    setConn('off', 'signed out');
    $('cred').focus();
  }

  function signOut(msg) {
    sessionStorage.removeItem(KEY);
    st.gen++;
    if (st.controller) st.controller.abort();
    // Nothing of this credential's view stays in the page.
    st.nodes = new Map();
    st.rows = new Map();
    st.members = [];
    st.blocks = [];
    st.hl = '';
    st.page = 0;
    for (const id of ['members', 'blocks', 'events', 'topology', 'edge-count', 'topo-info']) $(id).textContent = '';
    $('nodes').tBodies[0].textContent = '';
    $('filter').value = '';
    showLogin(msg);
  }

  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const c = $('cred').value.trim();
    if (!c) return;
    $('cred').value = '';
    $('login-error').textContent = '';
    sessionStorage.setItem(KEY, c);
    connect(c);
  });
  $('logout').addEventListener('click', () => signOut(''));

  // ---- the stream

  async function connect(cred) {
    const gen = ++st.gen;
    let backoff = 500;
    while (gen === st.gen) {
      const ctl = new AbortController();
      st.controller = ctl;
      setConn('wait', 'connecting');
      let res;
      try {
        if (!probe.fetchAt) probe.fetchAt = performance.now();
      res = await fetch('api/stream', {
          headers: { Authorization: 'Bearer ' + cred, Accept: 'text/event-stream' },
          cache: 'no-store', credentials: 'omit', signal: ctl.signal,
        });
      } catch (e) {
        if (gen !== st.gen) return;
        setConn('off', 'registrar unreachable');
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 10000);
        continue;
      }
      if (res.status === 401) {
        const b = await res.json().catch(() => ({}));
        if (gen === st.gen) signOut(b.error || 'credential refused');
        return;
      }
      if (!res.ok || !res.body) {
        setConn('off', 'HTTP ' + res.status);
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 10000);
        continue;
      }
      backoff = 500;
      if (!probe.headersAt) probe.headersAt = performance.now();
      setConn('on', 'live');
      try {
        await read(res.body, gen);
      } catch (e) {
        // a dropped connection: reconnect below
      }
      if (gen !== st.gen) return;
      setConn('wait', 'reconnecting');
      await sleep(300);
    }
  }

  async function read(body, gen) {
    const reader = body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      if (gen !== st.gen) {
        reader.cancel().catch(() => {});
        return;
      }
      const from = Math.max(0, buf.length - 1);
      buf += dec.decode(value, { stream: true });
      let i = buf.indexOf('\n\n', from);
      while (i >= 0) {
        dispatch(buf.slice(0, i));
        buf = buf.slice(i + 2);
        i = buf.indexOf('\n\n');
      }
    }
  }

  function dispatch(block) {
    let name = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      if (line === '' || line[0] === ':') continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let v = c < 0 ? '' : line.slice(c + 1);
      if (v[0] === ' ') v = v.slice(1);
      if (field === 'event') name = v;
      else if (field === 'data') data += (data ? '\n' : '') + v;
    }
    if (!data) return;
    const t0 = performance.now();
    const msg = JSON.parse(data);
    probe.messages++;
    if (name === 'snapshot' && !probe.snapshotAt) {
      probe.snapshotAt = t0;
      probe.parseMs = performance.now() - t0;
    }
    if (name === 'snapshot') applySnapshot(msg);
    else if (name === 'delta') applyDelta(msg);
    else if (name === 'error') signOut(msg.error || 'credential refused');
  }

  // ---- state

  function applySnapshot(s) {
    st.principal = s.principal;
    st.admin = s.admin;
    st.index = s.index;
    st.offset = Date.parse(s.now) - Date.now();
    st.nodes = new Map();
    for (const n of s.nodes) st.nodes.set(n.id, n);
    st.members = s.members || [];
    st.blocks = s.blocks || [];
    st.chain = s.chain || null;
    st.eventKeys = new Set();
    st.pendingEvents = [];
    $('events').textContent = '';
    addEvents(s.events || []);
    const d = st.dirty;
    d.table = d.topo = d.members = d.blocks = d.chain = d.events = true;
    $('login').hidden = true;
    $('app').hidden = false;
    $('logout').hidden = false;
    $('who').textContent = s.admin ? 'administrator' : 'member ' + s.principal;
    render();
  }

  function applyDelta(dl) {
    const d = st.dirty;
    st.index = dl.index;
    st.offset = Date.parse(dl.now) - Date.now();
    for (const n of dl.upsert || []) {
      const old = st.nodes.get(n.id);
      st.nodes.set(n.id, n);
      d.table = true;
      if (!old || topoChanged(old, n)) d.topo = true;
    }
    for (const id of dl.remove || []) {
      if (!st.nodes.delete(id)) continue;
      d.table = d.topo = true;
    }
    if (dl.members) {
      st.members = dl.members;
      d.members = true;
    }
    if (dl.blocks) {
      st.blocks = dl.blocks;
      d.blocks = true;
    }
    if (dl.chain !== undefined) {
      st.chain = dl.chain;
      d.chain = true;
    }
    if (dl.events) addEvents(dl.events);
    schedule();
  }

  function topoChanged(a, b) {
    return a.live !== b.live || a.role !== b.role || a.member !== b.member ||
      (a.peer_ids || []).join() !== (b.peer_ids || []).join();
  }

  function addEvents(evs) {
    for (const e of evs) {
      if (st.eventKeys.has(e.key)) continue;
      st.eventKeys.add(e.key);
      st.pendingEvents.push(e);
      st.dirty.events = true;
    }
  }

  function schedule() {
    if (st.scheduled) return;
    st.scheduled = true;
    setTimeout(render, 0);
  }

  function render() {
    st.scheduled = false;
    const t0 = performance.now();
    const d = st.dirty;
    const tm = {};
    const timed = (name, f) => {
      const s = performance.now();
      f();
      tm[name] = Math.round(performance.now() - s);
    };
    if (d.members) timed('members', renderMembers);
    if (d.table) timed('table', renderTable);
    if (d.topo) timed('topology', renderTopology);
    if (d.blocks) timed('blocks', renderBlocks);
    if (d.chain) timed('chain', renderChain);
    if (d.events) timed('events', renderEvents);
    d.table = d.topo = d.members = d.blocks = d.chain = d.events = false;
    renderSummary();
    const t1 = performance.now();
    probe.timings = tm;
    probe.renders++;
    probe.lastRender = t1;
    probe.lastRenderMs = t1 - t0;
    if (!probe.ready) {
      probe.ready = true;
      probe.firstRender = t1;
      // Interactive: the first frame with the data is painted and the main
      // thread is free again (a task queued from the frame callback runs
      // after that frame's paint).
      requestAnimationFrame(() => setTimeout(() => {
        probe.interactive = performance.now();
      }, 0));
    }
  }

  function renderSummary() {
    let live = 0;
    for (const n of st.nodes.values()) if (n.live) live++;
    $('summary').textContent = st.nodes.size + ' nodes · ' + live + ' live · ' + st.edges + ' connections · index ' + st.index;
  }

  // ---- members

  function renderMembers() {
    const box = $('members');
    box.textContent = '';
    const recent = st.blocks.length;
    for (const m of st.members) {
      const c = el('div', 'card health-' + m.health.replace(' ', '-'));
      c.dataset.member = m.name;
      const top = el('div');
      top.append(el('span', 'name', m.name), el('span', 'badge health-' + m.health.replace(' ', '-'), m.health));
      c.append(top);
      if (m.reason) c.append(el('div', 'line', m.reason));
      c.append(el('div', 'line', m.live + ' of ' + m.nodes + ' nodes live · head #' + m.head));
      if (recent) c.append(el('div', 'line', 'sealed ' + m.sealed + ' of the last ' + recent + ' blocks seen'));
      if (m.signers && m.signers.length) {
        const s = el('div', 'line mono', 'signer ' + m.signers.map((a) => a.slice(0, 10) + '…').join(', '));
        s.title = m.signers.join('\n');
        c.append(s);
      }
      box.append(c);
    }
  }

  // ---- nodes table

  function sorted() {
    return Array.from(st.nodes.values()).sort((a, b) =>
      a.member < b.member ? -1 : a.member > b.member ? 1 :
        (ROLE_ORDER[a.role] - ROLE_ORDER[b.role]) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  function rowText(n) {
    return (n.member + ' ' + n.role + ' ' + n.id + ' ' + (n.client || '') + ' ' + endpointText(n)).toLowerCase();
  }

  // The table shows one page of the nodes the filter keeps, in member,
  // role, ID order; the graph above always shows them all.
  function visibleNodes() {
    const q = $('filter').value.trim().toLowerCase();
    const all = sorted();
    return q ? all.filter((n) => rowText(n).includes(q)) : all;
  }

  function renderTable() {
    const list = visibleNodes();
    const pages = Math.max(1, Math.ceil(list.length / PAGE));
    st.page = Math.min(st.page, pages - 1);
    const slice = list.slice(st.page * PAGE, (st.page + 1) * PAGE);
    const rows = new Map();
    const frag = document.createDocumentFragment();
    for (const n of slice) {
      let tr = st.rows.get(n.id);
      if (!tr) {
        tr = el('tr');
        tr.dataset.id = n.id;
        for (const c of ['member', 'role', 'node mono', 'endpoint mono', 'client', 'num head', 'num peers', 'num lease', 'changed']) tr.append(el('td', c));
      }
      fillRow(n, tr);
      rows.set(n.id, tr);
      frag.append(tr);
    }
    st.rows = rows;
    $('nodes').tBodies[0].replaceChildren(frag);
    const pager = $('pager');
    pager.hidden = list.length <= PAGE;
    $('page-info').textContent = list.length
      ? (st.page * PAGE + 1) + '–' + (st.page * PAGE + slice.length) + ' of ' + list.length
      : 'none';
    $('prev').disabled = st.page === 0;
    $('next').disabled = st.page >= pages - 1;
  }

  $('nodes').tBodies[0].addEventListener('click', (ev) => {
    const tr = ev.target.closest('tr');
    if (tr) highlight(tr.dataset.id, false);
  });
  $('filter').addEventListener('input', () => {
    st.page = 0;
    renderTable();
  });
  $('prev').addEventListener('click', () => {
    st.page = Math.max(0, st.page - 1);
    renderTable();
  });
  $('next').addEventListener('click', () => {
    st.page++;
    renderTable();
  });

  function endpointText(n) {
    if (n.endpoint && n.public_endpoint && hostPort(n.endpoint) !== hostPort(n.public_endpoint)) {
      return hostPort(n.endpoint) + ' · public ' + hostPort(n.public_endpoint);
    }
    return hostPort(n.endpoint || n.public_endpoint || '');
  }

  function fillRow(n, tr) {
    const c = tr.cells;
    c[0].textContent = n.member;
    c[1].textContent = n.role;
    c[2].textContent = short(n.id);
    c[2].title = n.id;
    c[3].textContent = endpointText(n);
    c[3].title = [n.endpoint, n.public_endpoint].filter(Boolean).join('\n');
    c[4].textContent = n.client || '';
    c[4].title = n.client || '';
    c[5].textContent = n.head ? '#' + n.head : '';
    c[6].textContent = String(n.peers);
    tr.classList.toggle('down', !n.live);
    tr.classList.toggle('hl', n.id === st.hl);
    updateTimes(n, tr);
  }

  function leaseText(n) {
    const e = ms(n.expires);
    if (!(e > 0) || new Date(e).getUTCFullYear() < 1971) return 'removed';
    const left = e - serverNow();
    if (!n.live) return left > 0 ? 'not live' : 'lapsed';
    return left > 0 ? dur(left) : 'lapsing';
  }

  function updateTimes(n, tr) {
    const c = tr.cells;
    const l = leaseText(n);
    if (c[7].textContent !== l) c[7].textContent = l;
    const a = ago(n.changed);
    if (c[8].textContent !== a) c[8].textContent = a;
  }

  setInterval(() => {
    for (const [id, tr] of st.rows) {
      const n = st.nodes.get(id);
      if (n) updateTimes(n, tr);
    }
  }, 1000);

  // highlight marks a node in the graph and the table, turning to the
  // table page that holds it.
  function highlight(id, scroll) {
    const old = st.hl && $('topology').querySelector('.node[data-id="' + st.hl + '"]');
    if (old) old.classList.remove('hl');
    st.hl = st.hl === id ? '' : id;
    if (st.hl) {
      const i = visibleNodes().findIndex((n) => n.id === id);
      if (i >= 0) st.page = Math.floor(i / PAGE);
      const g = $('topology').querySelector('.node[data-id="' + id + '"]');
      if (g) g.classList.add('hl');
    }
    renderTable();
    const tr = st.rows.get(id);
    if (tr && scroll) tr.scrollIntoView({ block: 'center' });
  }

  // ---- topology (drawn by graph.js)

  function renderTopology() {
    const root = $('topology');
    st.edges = window.ConsortiumGraph.draw(root, st.nodes, sorted(), nodeTitle);
    $('edge-count').textContent = st.edges + ' connections';
    const g = st.hl && root.querySelector('.node[data-id="' + st.hl + '"]');
    if (g) g.classList.add('hl');
  }

  function nodeTitle(n) {
    return n.member + ' ' + n.role + ' ' + n.id + '\n' + endpointText(n) + '\n' +
      (n.client || '') + '\nhead #' + n.head + ', ' + n.peers + ' peers';
  }

  // One listener for every node of the graph, however many.
  $('topology').addEventListener('mouseover', (ev) => {
    const el = ev.target.closest('.node');
    const n = el && st.nodes.get(el.dataset.id);
    $('topo-info').textContent = n ? nodeTitle(n).replace(/\n/g, ' · ') : '';
  });
  $('topology').addEventListener('click', (ev) => {
    const el = ev.target.closest('.node');
    if (el) highlight(el.dataset.id, true);
  });

  // ---- blocks and events

  function renderBlocks() {
    const ol = $('blocks');
    ol.textContent = '';
    if (!st.blocks.length) ol.append(el('li', 'muted', 'no sealed block reported yet'));
    for (const b of st.blocks) {
      const li = el('li');
      li.dataset.number = b.number;
      li.append(el('span', 'mono', '#' + b.number), el('span', '', b.member || 'unknown member'), el('span', 'mono muted', b.signer),
        el('span', b.checked ? 'tag checked' : 'tag muted', b.checked ? 'checked' : 'self-reported'));
      li.dataset.checked = b.checked ? '1' : '0';
      ol.append(li);
    }
  }

  // ---- consensus (BFT consortia)

  function renderChain() {
    const c = st.chain;
    $('chain-panel').hidden = !c;
    const box = $('chain');
    box.textContent = '';
    if (!c) return;
    const fact = (label, value) => {
      const f = el('span', 'fact', label);
      f.append(el('b', 'mono', String(value)));
      return f;
    };
    const facts = el('div', 'facts');
    facts.append(
      fact('height', c.height),
      fact('round', c.round),
      fact('proposer', c.proposer_name || short(c.proposer)),
      fact('time per block', c.block_ms ? (c.block_ms / 1000).toFixed(2) + ' s' : '–'),
      fact('signed last commit', c.signed + ' of ' + c.validators.length),
      fact('tolerates', c.tolerates + (c.tolerates === 1 ? ' validator lost' : ' validators lost')));
    const sigs = el('div', 'sigs');
    for (const v of c.validators) {
      const s = el('span', 'sig' + (v.signed ? '' : ' missing'), (v.name || short(v.address)) + (v.signed ? ' ✓' : ' ✗'));
      s.title = v.address + ' power ' + v.power;
      s.dataset.address = v.address;
      sigs.append(s);
    }
    box.append(facts, sigs, el('div', 'hint', 'reported by ' + c.reporter_member + ' ' + short(c.reporter) + '; self-reported by that node, not checked by the registrar'));
    if (c.governance) box.append(renderGovernance(c.governance));
  }

  // The validator set as the chain holds it, and the open proposals with
  // their votes and the fault tolerance before and after each change.
  function renderGovernance(g) {
    const box = el('div', 'gov');
    box.append(el('h3', '', 'Validator set at height ' + g.height + ': ' + g.summary +
      '; a change needs power ' + g.needed_power + ' of ' + g.total_power));
    if (!g.proposals.length) {
      box.append(el('div', 'hint', 'no open proposals'));
      return box;
    }
    const ol = el('ol', 'proposals');
    for (const p of g.proposals) {
      const li = el('li', 'proposal' + (p.halts ? ' halts' : '') + (p.refused ? ' refused' : ''));
      li.dataset.id = p.id;
      li.append(el('div', 'what', p.short + '  ' + p.action));
      li.append(el('div', 'who', 'proposed by ' + p.proposer + '; signed: ' + (p.votes.join(', ') || 'nobody') +
        ' (power ' + p.power + ' of ' + g.needed_power + '); missing: ' + (p.missing.join(', ') || 'nobody') +
        '; expires at height ' + p.expires));
      li.append(el('div', 'ft', 'fault tolerance: ' + p.before + (p.after ? ' → ' + p.after : '')));
      if (p.halts) li.append(el('div', 'warn', p.halts));
      if (p.refused) li.append(el('div', 'warn', 'the chain would refuse it now: ' + p.refused));
      ol.append(li);
    }
    box.append(ol);
    return box;
  }

  function describe(e) {
    if (e.kind === 'member_added' || e.kind === 'member_revoked') return 'member ' + e.member;
    let s = e.member + ' ' + e.role + ' ' + short(e.node);
    if (e.peer) s += ' ↔ ' + e.peer_member + ' ' + e.peer_role + ' ' + short(e.peer);
    return s;
  }

  function renderEvents() {
    const ol = $('events');
    for (const e of st.pendingEvents) {
      const li = el('li');
      li.dataset.kind = e.kind;
      if (e.node) li.dataset.node = e.node;
      if (e.peer) li.dataset.peer = e.peer;
      li.append(el('span', 'mono muted', clock(e.time)), el('span', 'kind ' + e.kind, e.kind.replace('_', ' ')), el('span', '', describe(e)));
      ol.prepend(li);
    }
    st.pendingEvents = [];
    while (ol.children.length > MAX_EVENTS) ol.lastElementChild.remove();
  }

  // ---- start

  const saved = sessionStorage.getItem(KEY);
  if (saved) {
    $('login').hidden = true;
    connect(saved);
  } else {
    showLogin('');
  }
})();
