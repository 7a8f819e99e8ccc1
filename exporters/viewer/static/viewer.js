/* mlflow-prov interactive graph viewer: plain JS + SVG, no network. The layered layout is
 * dagre's (inlined before this script, see exporters/viewer/html.py): ranks left to right,
 * edges routed around nodes, each edge label given its own place beside its edge.
 * Every element with class "mlprov-viewer" holds a <script type="application/json"> with
 * {title, nodes, edges, timeline}; nodes may carry children (a group the reader expands). */
(function () {
  "use strict";
  if (window.MLProvViewer) { window.MLProvViewer.initAll(); return; }
  var SVGNS = "http://www.w3.org/2000/svg";
  var COLORS = {
    run: "#bcd4f6", experiment: "#d9e2ec", dataset: "#fde68a", model: "#c7f0d8",
    artifact: "#f3e8ff", context: "#e0f2fe", agent: "#fed7aa", params: "#f1f5f9",
    metrics: "#f1f5f9", tags: "#f1f5f9", param: "#ffffff", metric: "#ffffff", tag: "#ffffff",
    system: "#fee2e2", group: "#eef2f7", summary: "#e5e7eb", prompt: "#fbcfe8",
    trace: "#ccfbf1"
  };
  var NODE_H = 38, ROW_H = 20, LABEL_H = 14, LANE_H = 8, LABEL_CHAR = 6, LABEL_PAD = 8;

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVGNS, name);
    for (var key in attrs) { node.setAttribute(key, attrs[key]); }
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function h(tag, text, parent, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = text; }
    if (cls) { node.className = cls; }
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function textWidth(text, extra) { return Math.min(320, Math.max(70, text.length * 7 + extra)); }
  function shortLabel(label) { return label.length > 40 ? label.slice(0, 39) + "\u2026" : label; }

  function Viewer(root) {
    this.root = root;
    var data = JSON.parse(root.querySelector("script.mv-data").textContent);
    this.data = data;
    this.byId = {};
    this.parent = {};
    this.expanded = {};
    var self = this;
    (function index(list, parentId) {
      list.forEach(function (n) {
        n.attributes = n.attributes || {};
        n.children = n.children || [];
        self.byId[n.id] = n;
        if (parentId) { self.parent[n.id] = parentId; }
        index(n.children, n.id);
      });
    })(data.nodes, null);
    this.view = {x: 20, y: 20, k: 1};
    this.selected = null;
    this.build();
    this.render();
    this.fit();
  }

  Viewer.prototype.build = function () {
    var self = this, root = this.root;
    var bar = h("div", null, root, "mv-toolbar");
    h("h2", this.data.title, bar);
    [["+", function () { self.zoom(1.25); }], ["\u2212", function () { self.zoom(0.8); }],
     ["Fit", function () { self.fit(); }],
     ["Expand all", function () { self.setAll(true); }],
     ["Collapse all", function () { self.setAll(false); }]].forEach(function (b) {
      var btn = h("button", b[0], bar); btn.type = "button";
      btn.addEventListener("click", b[1]);
    });
    var search = h("input", null, bar, "mv-search");
    search.type = "search";
    search.placeholder = "find a node by name\u2026";
    search.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { self.find(search.value); }
    });
    this.canvas = h("div", null, root, "mv-canvas");
    this.svg = el("svg", {"class": "mv-svg"}, this.canvas);
    var defs = el("defs", {}, this.svg);
    var marker = el("marker", {id: root.id + "-arrow", viewBox: "0 0 10 10", refX: "10",
      refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse"}, defs);
    el("path", {d: "M0,0 L10,5 L0,10 z", fill: "#7b8794"}, marker);
    this.layer = el("g", {"class": "mv-layer"}, this.svg);
    this.panel = h("div", null, root, "mv-panel");
    h("p", "Click a node to see its attributes. Drag to pan, scroll to zoom; " +
      "nodes marked + hold a group you can expand.", this.panel, "mv-hint");
    if (this.data.timeline && this.data.timeline.length) { this.buildTimeline(); }
    this.bindPanZoom();
  };

  Viewer.prototype.buildTimeline = function () {
    var box = h("div", null, this.root, "mv-timeline");
    h("h3", "Journal timeline (" + this.data.timeline.length + " entries)", box);
    var table = h("table", null, box), head = h("tr", null, h("thead", null, table));
    ["time (UTC)", "event", "what changed", "writer"].forEach(function (c) { h("th", c, head); });
    var body = h("tbody", null, table);
    this.data.timeline.forEach(function (row) {
      var tr = h("tr", null, body);
      tr.className = row.keys ? "mv-event mv-fold" : "mv-event";
      h("td", row.span || row.time || "", tr);
      h("td", row.kind || "", tr);
      var what = h("td", null, tr);
      if (row.keys) { foldDetails(row, what); }
      else {
        if (row.what) { h("span", row.what + " ", what); }
        if (row.old !== undefined && row.old !== null) {
          h("span", String(row.old), what, "mv-old");
          h("span", " \u2192 ", what);
        }
        if (row["new"] !== undefined && row["new"] !== null) {
          h("span", String(row["new"]), what, "mv-new");
        }
      }
      h("td", row.writer || "", tr);
    });
  };

  function foldDetails(row, cell) {
    /* a folded stretch of metric events: its summary, and one row per key when opened */
    var details = h("details", null, cell, "mv-fold-keys");
    h("summary", row.what, details);
    var table = h("table", null, details), head = h("tr", null, h("thead", null, table));
    ["metric", "logged", "when (UTC)"].forEach(function (c) { h("th", c, head); });
    var body = h("tbody", null, table);
    row.keys.forEach(function (key) {
      var tr = h("tr", null, body, "mv-fold-key");
      h("td", key.key, tr, "mv-key"); h("td", key.logged, tr); h("td", key.span, tr);
    });
  }

  Viewer.prototype.topOf = function (id) {
    /* the top-level node an id is drawn in: itself, or the group (expanded or not) holding it */
    while (this.parent[id]) { id = this.parent[id]; }
    return id;
  };

  Viewer.prototype.size = function (n) {
    /* a collapsed node is one line; an expanded group lists its members as rows inside it */
    var open = n.children.length && this.expanded[n.id];
    var w = textWidth(shortLabel(n.label), n.children.length ? 52 : 28);
    if (open) {
      n.children.forEach(function (c) { w = Math.max(w, textWidth(shortLabel(c.label), 24)); });
    }
    return {w: w, h: open ? NODE_H + 4 + n.children.length * ROW_H : NODE_H};
  };

  Viewer.prototype.visibleGraph = function () {
    var self = this, edges = [], seen = {};
    this.data.edges.forEach(function (e) {
      if (!self.byId[e.source] || !self.byId[e.target]) { return; }
      var s = self.topOf(e.source), t = self.topOf(e.target);
      var key = s + "\u0000" + t + "\u0000" + e.label;
      if (s === t || seen[key]) { return; }
      seen[key] = true;
      edges.push({source: s, target: t, label: e.label});
    });
    return {nodes: this.data.nodes, edges: edges};
  };

  function labelSize(label) {
    /* room dagre keeps for a label: the text, and below it the lane its edge runs in */
    return label ? {w: label.length * LABEL_CHAR + LABEL_PAD, h: LABEL_H + LANE_H}
                 : {w: 0, h: 0};
  }

  Viewer.prototype.layout = function (g) {
    /* dagre's layered layout (left to right): a node per visible node, an edge with room
       for its label per visible edge; loose edges (parent of) pull no weight */
    var self = this, loose = this.data.loose || [];
    var dg = new window.dagre.graphlib.Graph({multigraph: true});
    dg.setGraph({rankdir: "LR", nodesep: 20, ranksep: 50, edgesep: 12, marginx: 8, marginy: 8});
    dg.setDefaultEdgeLabel(function () { return {}; });
    g.nodes.forEach(function (n) {
      var size = self.size(n);
      dg.setNode(n.id, {width: size.w, height: size.h});
    });
    g.edges.forEach(function (e, k) {
      var size = labelSize(e.label);
      dg.setEdge(e.source, e.target, {width: size.w, height: size.h, labelpos: "c",
        minlen: 1, weight: loose.indexOf(e.label) >= 0 ? 0 : 1}, "e" + k);
    });
    window.dagre.layout(dg);
    var pos = {}, bands = {};
    function band(x, half) {
      var key = x.toFixed(2);
      bands[key] = Math.max(bands[key] || 0, half);
    }
    g.nodes.forEach(function (n) {
      var d = dg.node(n.id);
      pos[n.id] = {x: d.x - d.width / 2, y: d.y - d.height / 2, w: d.width, h: d.height};
      band(d.x, d.width / 2);
    });
    var edges = g.edges.map(function (e, k) {
      var d = dg.edge(e.source, e.target, "e" + k);
      if (e.label) { band(d.x, d.width / 2); }
      return d;
    });
    var routes = g.edges.map(function (e, k) {
      return route(edges[k], dg.node(e.source), dg.node(e.target), bands, !!e.label);
    });
    var box = dg.graph();
    return {pos: pos, routes: routes, width: box.width || 0, height: box.height || 0};
  };

  function route(d, source, target, bands, labelled) {
    /* dagre's route made orthogonal inside each rank: an edge leaves its source's side,
       crosses every rank it passes along a straight lane (under its label, in the room
       dagre kept for it), and slants only between ranks, where nothing is drawn; so no
       edge runs through a node or a label. Returns the points and the label's box. */
    var dir = target.x > source.x ? 1 : target.x < source.x ? -1 : 0;
    var inner = d.points.slice(1, -1), label = null;
    if (labelled) {
      label = {x: d.x - d.width / 2, y: d.y - d.height / 2, w: d.width, h: LABEL_H};
    }
    if (!dir) { return {points: d.points, label: label}; }
    function half(x) { return bands[x.toFixed(2)] || 0; }
    var points = [{x: source.x + dir * source.width / 2, y: source.y},
                  {x: source.x + dir * half(source.x), y: source.y}];
    inner.forEach(function (p) {
      var y = label && Math.abs(p.x - d.x) < 0.01 && Math.abs(p.y - d.y) < 0.01
        ? label.y + LABEL_H + LANE_H / 2 : p.y;
      points.push({x: p.x - dir * half(p.x), y: y}, {x: p.x + dir * half(p.x), y: y});
    });
    points.push({x: target.x - dir * half(target.x), y: target.y},
                {x: target.x - dir * target.width / 2, y: target.y});
    return {points: points, label: label};
  }

  function routePath(points) {
    /* the route's points joined by straight segments: drawn exactly as laid out */
    return points.map(function (p, k) { return (k ? "L" : "M") + p.x + "," + p.y; }).join(" ");
  }

  Viewer.prototype.render = function () {
    var self = this, g = this.visibleGraph(), laid = this.layout(g), pos = laid.pos;
    this.pos = pos;
    this.extent = {w: laid.width, h: laid.height};
    while (this.layer.firstChild) { this.layer.removeChild(this.layer.firstChild); }
    var edgeLayer = el("g", {}, this.layer), nodeLayer = el("g", {}, this.layer);
    var labelLayer = el("g", {"class": "mv-labels"}, this.layer);
    var arrow = "url(#" + this.root.id + "-arrow)";
    g.edges.forEach(function (e, k) {
      var route = laid.routes[k];
      var dashed = (self.data.loose || []).indexOf(e.label) >= 0;
      var grp = el("g", {"class": "mv-edge" + (dashed ? " mv-member" : ""),
        "data-source": e.source, "data-target": e.target}, edgeLayer);
      el("path", {d: routePath(route.points), "marker-end": arrow}, grp);
      if (route.label) {
        var box = route.label;
        var lab = el("g", {"class": "mv-edge-label", "data-source": e.source,
          "data-target": e.target, transform: "translate(" + box.x + "," + box.y + ")"},
          labelLayer);
        el("rect", {width: box.w, height: box.h, rx: 3}, lab);
        el("text", {x: box.w / 2, y: box.h - 4}, lab).textContent = e.label;
      }
    });
    g.nodes.forEach(function (n) {
      var p = pos[n.id];
      var grp = el("g", {"class": "mv-node mv-kind-" + n.kind, "data-id": n.id,
        transform: "translate(" + p.x + "," + p.y + ")"}, nodeLayer);
      if (self.selected === n.id) { grp.classList.add("mv-selected"); }
      el("rect", {"class": "mv-box", width: p.w, height: p.h, rx: n.kind === "run" ? 4 : 10,
        fill: COLORS[n.kind] || "#ffffff"}, grp);
      el("text", {"class": "mv-kind", x: 8, y: 12}, grp).textContent = n.kind;
      el("text", {x: 8, y: 28}, grp).textContent = shortLabel(n.label);
      el("title", {}, grp).textContent = n.label;
      grp.addEventListener("click", function (ev) { ev.stopPropagation(); self.select(n.id); });
      grp.addEventListener("dblclick", function (ev) { ev.stopPropagation(); self.toggle(n.id); });
      if (n.children.length) {
        var t = el("g", {"class": "mv-toggle", "data-toggle": n.id,
          transform: "translate(" + (p.w - 20) + ",4)"}, grp);
        el("rect", {width: 16, height: 16, rx: 3}, t);
        el("text", {x: 8, y: 13}, t).textContent = self.expanded[n.id] ? "\u2212" : "+";
        t.addEventListener("click", function (ev) { ev.stopPropagation(); self.toggle(n.id); });
        if (self.expanded[n.id]) { self.renderRows(grp, n, p); }
      }
    });
    this.apply();
  };

  Viewer.prototype.renderRows = function (grp, n, p) {
    /* the members of an expanded group, one clickable row each */
    var self = this;
    n.children.forEach(function (c, k) {
      var y = NODE_H + 2 + k * ROW_H;
      var row = el("g", {"class": "mv-row", "data-id": c.id,
        transform: "translate(0," + y + ")"}, grp);
      if (self.selected === c.id) { row.classList.add("mv-selected"); }
      el("rect", {width: p.w, height: ROW_H, fill: "#ffffff", "fill-opacity": 0.85}, row);
      el("line", {x1: 0, y1: 0, x2: p.w, y2: 0, stroke: "#cbd2d9"}, row);
      el("text", {x: 8, y: 14}, row).textContent = shortLabel(c.label) +
        (c.children.length ? "  (" + c.children.length + ")" : "");
      el("title", {}, row).textContent = c.label;
      row.addEventListener("click", function (ev) { ev.stopPropagation(); self.select(c.id); });
    });
  };

  Viewer.prototype.select = function (id) {
    this.selected = id;
    var n = this.byId[id], panel = this.panel, self = this;
    this.layer.querySelectorAll(".mv-node, .mv-row").forEach(function (g) {
      g.classList.toggle("mv-selected", g.getAttribute("data-id") === id);
    });
    panel.textContent = "";
    h("h3", n.label, panel);
    h("div", n.kind, panel, "mv-note");
    if (n.href) {
      var a = h("a", /^https?:/.test(n.href) ? "open in MLflow" : "open its page",
        h("p", null, panel));
      a.href = n.href;
    }
    var keys = Object.keys(n.attributes);
    if (keys.length) {
      var table = h("table", null, panel);
      table.className = "mv-attributes";
      keys.forEach(function (k) {
        var tr = h("tr", null, table);
        h("th", k, tr); h("td", n.attributes[k], tr);
      });
    }
    if (n.children.length) {
      var btn = h("button", (this.expanded[id] ? "Collapse" : "Expand") + " " +
        n.children.length + " members", h("p", null, panel));
      btn.type = "button";
      btn.addEventListener("click", function () { self.toggle(id); });
      var list = h("ul", null, panel);
      n.children.forEach(function (c) { h("li", c.label, list); });
    }
  };

  Viewer.prototype.find = function (text) {
    /* select the next node whose label contains text, opening its group and centring it */
    var needle = text.trim().toLowerCase(), ids = Object.keys(this.byId), self = this;
    if (!needle) { return; }
    var start = this.selected ? ids.indexOf(this.selected) + 1 : 0;
    for (var k = 0; k < ids.length; k++) {
      var id = ids[(start + k) % ids.length];
      if (this.byId[id].label.toLowerCase().indexOf(needle) < 0) { continue; }
      for (var up = this.parent[id]; up; up = this.parent[up]) { this.expanded[up] = true; }
      this.selected = id;
      this.render();
      this.select(id);
      var p = this.pos[this.topOf(id)], r = this.svg.getBoundingClientRect();
      self.view.k = Math.max(self.view.k, 1);
      self.view.x = r.width / 2 - (p.x + p.w / 2) * self.view.k;
      self.view.y = r.height / 2 - (p.y + NODE_H / 2) * self.view.k;
      this.apply();
      return;
    }
    this.panel.textContent = "";
    h("p", "No node is named like \u201c" + text + "\u201d.", this.panel, "mv-hint");
  };

  Viewer.prototype.toggle = function (id) {
    this.expanded[id] = !this.expanded[id];
    this.render();
    if (this.selected) { this.select(this.selected); }
  };

  Viewer.prototype.setAll = function (open) {
    var self = this;
    Object.keys(this.byId).forEach(function (id) {
      if (self.byId[id].children.length) { self.expanded[id] = open; }
    });
    this.render();
    this.fit();
  };

  Viewer.prototype.apply = function () {
    this.layer.setAttribute("transform", "translate(" + this.view.x + "," + this.view.y +
      ") scale(" + this.view.k + ")");
  };

  Viewer.prototype.zoom = function (factor, cx, cy) {
    var r = this.svg.getBoundingClientRect();
    if (cx === undefined) { cx = r.width / 2; cy = r.height / 2; }
    var k = Math.min(4, Math.max(0.05, this.view.k * factor));
    this.view.x = cx - (cx - this.view.x) * (k / this.view.k);
    this.view.y = cy - (cy - this.view.y) * (k / this.view.k);
    this.view.k = k;
    this.apply();
  };

  Viewer.prototype.fit = function () {
    var r = this.svg.getBoundingClientRect(), maxX = this.extent.w, maxY = this.extent.h;
    if (!r.width || !maxX) { return; }
    var k = Math.min(1.5, (r.width - 40) / maxX, (r.height - 40) / maxY);
    this.view = {k: k, x: (r.width - maxX * k) / 2, y: (r.height - maxY * k) / 2};
    this.apply();
  };

  Viewer.prototype.bindPanZoom = function () {
    var self = this, start = null;
    this.svg.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var r = self.svg.getBoundingClientRect();
      self.zoom(ev.deltaY < 0 ? 1.1 : 1 / 1.1, ev.clientX - r.left, ev.clientY - r.top);
    }, {passive: false});
    this.svg.addEventListener("mousedown", function (ev) {
      start = {x: ev.clientX - self.view.x, y: ev.clientY - self.view.y};
      self.canvas.classList.add("mv-dragging");
    });
    window.addEventListener("mousemove", function (ev) {
      if (!start) { return; }
      self.view.x = ev.clientX - start.x; self.view.y = ev.clientY - start.y; self.apply();
    });
    window.addEventListener("mouseup", function () {
      start = null; self.canvas.classList.remove("mv-dragging");
    });
  };

  window.MLProvViewer = {
    viewers: [],
    initAll: function () {
      document.querySelectorAll(".mlprov-viewer").forEach(function (root) {
        if (root.getAttribute("data-ready")) { return; }
        root.setAttribute("data-ready", "1");
        window.MLProvViewer.viewers.push(new Viewer(root));
      });
    }
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", window.MLProvViewer.initAll);
  } else {
    window.MLProvViewer.initAll();
  }
})();
