// The topology graph of the consortium dashboard: member boxes, node
// circles and the actual peer connections, drawn as SVG. It knows nothing of
// the stream or the page's state; app.js calls ConsortiumGraph.draw.
'use strict';
window.ConsortiumGraph = (function () {
  const SVGNS = 'http://www.w3.org/2000/svg';
  const LETTER = { bootnode: 'B', validator: 'V', tx: 'T', public: 'P' };
  const DETAIL_MAX = 300; // above this many nodes the graph is drawn plainer

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // The graph draws one line per actual connection: a live node's reported
  // peer that is on this page. Either side's report is enough; a lapsed
  // node's last report is stale and draws nothing.
  function peerEdges(nodes) {
    const out = new Map();
    for (const n of nodes.values()) {
      if (!n.live || !n.peer_ids) continue;
      for (const p of n.peer_ids) {
        if (p === n.id || !nodes.has(p)) continue;
        const k = n.id < p ? n.id + ' ' + p : p + ' ' + n.id;
        if (!out.has(k)) out.set(k, n.id < p ? [n.id, p] : [p, n.id]);
      }
    }
    return out;
  }

  // The graph: one box per member, one circle per node, one line per
  // connection. Up to DETAIL_MAX nodes every node has its role letter, a
  // label and a tooltip and every connection is its own <line>; past that
  // the circles are bare and the connections are two <path>s (inside and
  // across members), which keeps a thousand-node graph to a few thousand
  // elements. Hovering a node names it in the caption either way.
  //
  // draw replaces root's content. nodes maps IDs to nodes, ordered lists
  // them in drawing order, title(n) is a node's tooltip. It returns the
  // number of connections drawn.
  function draw(root, nodes, ordered, title) {
    const CELL = 50, PAD = 18, HEAD = 30, GAP = 60, RING_MAX = 12;
    const detail = nodes.size <= DETAIL_MAX;
    const groups = new Map();
    for (const n of ordered) {
      if (!groups.has(n.member)) groups.set(n.member, []);
      groups.get(n.member).push(n);
    }
    // A small member is drawn as a ring, so no line runs through a node;
    // a large one as a grid. Its public nodes come last, at the bottom.
    const boxes = [];
    for (const [member, nodes] of groups) {
      if (nodes.length <= RING_MAX) {
        const r = Math.max(42, (nodes.length * CELL) / (2 * Math.PI));
        const side = 2 * r + CELL + 2 * PAD;
        const pub = Math.max(1, nodes.filter((n) => n.role === 'public').length);
        boxes.push({ member, nodes, ring: r, pub, w: side, h: HEAD + side - PAD });
        continue;
      }
      const cols = Math.max(1, Math.min(nodes.length, Math.ceil(Math.sqrt(nodes.length * 1.6))));
      const rows = Math.ceil(nodes.length / cols);
      boxes.push({ member, nodes, cols, w: PAD * 2 + cols * CELL, h: HEAD + PAD + rows * CELL });
    }
    const { width, height, radial } = boxes.length > 1 && boxes.every((b) => b.ring)
      ? placeAround(boxes, GAP)
      : placeInRows(boxes, GAP);
    const pos = new Map();
    const gBoxes = svg('g', { class: 'groups' });
    const gNodes = svg('g', { class: 'nodes' });
    for (const b of boxes) {
      const g = svg('g', { class: 'group', 'data-member': b.member });
      g.append(svg('rect', { x: b.x + 1, y: b.y + 1, width: b.w - 2, height: b.h - 2, rx: 10 }));
      g.append(svg('text', { x: b.x + 12, y: b.y + 20 }, b.member));
      gBoxes.append(g);
      const k = b.nodes.length;
      b.nodes.forEach((n, i) => {
        let cx, cy;
        if (b.ring) {
          // The last nodes (the public ones) face the layout's centre when
          // the members stand in a circle, else the bottom of the box.
          const a = (radial ? b.inward : Math.PI / 2) + ((i - (k - 1) + (b.pub - 1) / 2) * 2 * Math.PI) / k;
          cx = Math.round(b.x + b.w / 2 + b.ring * Math.cos(a));
          cy = Math.round(b.y + HEAD + (b.h - HEAD) / 2 - 8 + b.ring * Math.sin(a));
        } else {
          cx = b.x + PAD + (i % b.cols) * CELL + CELL / 2;
          cy = b.y + HEAD + Math.floor(i / b.cols) * CELL + CELL / 2 - 6;
        }
        pos.set(n.id, [cx, cy]);
        const cls = 'node role-' + n.role + (n.live ? '' : ' down');
        if (!detail) {
          gNodes.append(svg('circle', { class: cls, 'data-id': n.id, cx, cy, r: 12 }));
          return;
        }
        const g = svg('g', { class: cls, 'data-id': n.id });
        g.append(svg('title', {}, title(n)));
        g.append(svg('circle', { cx, cy, r: 12 }));
        g.append(svg('text', { class: 'letter', x: cx, y: cy }, LETTER[n.role] || '?'));
        g.append(svg('text', { class: 'label', x: cx, y: cy + 24 }, n.id.slice(0, 6)));
        gNodes.append(g);
      });
    }
    const gEdges = svg('g', { class: 'edges' });
    const es = peerEdges(nodes);
    let inner = '', cross = '', nInner = 0, nCross = 0;
    for (const [a, b] of es.values()) {
      const pa = pos.get(a), pb = pos.get(b);
      const across = nodes.get(a).member !== nodes.get(b).member;
      if (detail) {
        gEdges.append(svg('line', {
          class: across ? 'edge cross' : 'edge', 'data-a': a, 'data-b': b,
          x1: pa[0], y1: pa[1], x2: pb[0], y2: pb[1],
        }));
        continue;
      }
      const seg = 'M' + pa[0] + ' ' + pa[1] + 'L' + pb[0] + ' ' + pb[1];
      if (across) {
        cross += seg;
        nCross++;
      } else {
        inner += seg;
        nInner++;
      }
    }
    if (!detail) {
      gEdges.append(svg('path', { class: 'edge', d: inner || 'M0 0', 'data-count': nInner }));
      gEdges.append(svg('path', { class: 'edge cross', d: cross || 'M0 0', 'data-count': nCross }));
    }
    root.setAttribute('viewBox', '0 0 ' + Math.max(width, 1) + ' ' + Math.max(height, 1));
    // A small graph is drawn larger than life; CSS caps it at the page width.
    const zoom = nodes.size <= 60 ? 1.5 : 1;
    root.setAttribute('width', Math.max(Math.round(width * zoom), 1));
    root.setAttribute('height', Math.max(Math.round(height * zoom), 1));
    root.dataset.edges = es.size;
    root.replaceChildren(gBoxes, gEdges, gNodes);
    return es.size;
  }

  // placeInRows fills rows of boxes, left to right.
  function placeInRows(boxes, gap) {
    const maxW = Math.max(1400, ...boxes.map((b) => b.w));
    let x = 0, y = 0, rowH = 0, width = 0;
    for (const b of boxes) {
      if (x > 0 && x + b.w > maxW) {
        x = 0;
        y += rowH + gap;
        rowH = 0;
      }
      b.x = x;
      b.y = y;
      x += b.w + gap;
      rowH = Math.max(rowH, b.h);
      width = Math.max(width, b.x + b.w);
    }
    return { width, height: y + rowH, radial: false };
  }

  // placeAround stands the members (each a ring) in a circle, each ring's
  // public nodes on its side that faces the centre. Every public node then
  // lies on one inner circle, so a line between two members' public nodes
  // is a chord of it: it passes through no other node, and no member's ring
  // (each touches the inner circle only at its own public node). In a row
  // the a–c line would hide behind a–b–c.
  function placeAround(boxes, gap) {
    const m = boxes.length;
    // One ring size for all, so the public nodes share one inner circle.
    const ring = Math.max(...boxes.map((b) => b.ring));
    const w = Math.max(...boxes.map((b) => b.w)), h = Math.max(...boxes.map((b) => b.h));
    for (const b of boxes) Object.assign(b, { ring, w, h });
    const side = Math.max(w, h);
    // Neighbours' boxes must not meet, even on a diagonal.
    const d = Math.max(side / 2 + gap, (side * Math.SQRT2 + gap) / (2 * Math.sin(Math.PI / m)));
    const half = d + (side * Math.SQRT2) / 2;
    boxes.forEach((b, i) => {
      const t = -Math.PI / 2 + (2 * Math.PI * i) / m;
      b.inward = t + Math.PI;
      b.x = Math.round(half + d * Math.cos(t) - b.w / 2);
      b.y = Math.round(half + d * Math.sin(t) - b.h / 2);
    });
    const minX = Math.min(...boxes.map((b) => b.x)), minY = Math.min(...boxes.map((b) => b.y));
    for (const b of boxes) {
      b.x -= minX;
      b.y -= minY;
    }
    return {
      width: Math.max(...boxes.map((b) => b.x + b.w)),
      height: Math.max(...boxes.map((b) => b.y + b.h)),
      radial: true,
    };
  }

  return { draw, peerEdges };
})();
