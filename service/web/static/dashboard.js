// The dashboard: one card per coin (live signal from one WebSocket for every coin, falling back to
// each coin's SSE stream; recorded score history as an SVG chart with LONG/SHORT marks), the
// backtest chart (a PNG drawn by the server) beside its gross and net figures, and both scoring
// profiles' live track records. Everything it loads comes from this origin (the WebSocket too:
// CSP Level 3's 'self' covers ws:/wss: of the page's own host); the CSP allows nothing else.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const LONG_AT = 65;
const SHORT_AT = 35;
const HISTORY_PAGE = 1000; // the newest 1000 recorded signals: about 3.5 days at 5-minute intervals
const WS_PROTOCOL = "cryptosignals.v1";
const WS_OPEN_TIMEOUT_MS = 10_000;
const WS_MAX_FAILURES = 3; // sockets in a row that closed before any message: the SSE streams instead
const BACKOFF_MS = [1_000, 2_000, 4_000, 8_000, 15_000, 30_000];
const PROFILES = ["seed", "research"];

const params = new URLSearchParams(window.location.search);
const watchlist = (params.get("symbols") || document.body.dataset.watchlist || "BTC")
  .split(",")
  .map((s) => s.trim().toUpperCase())
  .filter((s) => /^[A-Z0-9_\-/]{1,30}$/.test(s))
  .slice(0, 4); // with the SSE fallback each card holds a stream; a browser opens 6 connections per host

// An API key for a server with SIGNAL_API_KEYS, given as the page's fragment (#key=..., which no
// request carries) and kept in this tab's sessionStorage; the fragment is then removed from the URL.
const KEY = (() => {
  try {
    const found = /(?:^#|&)key=([^&]+)/.exec(window.location.hash);
    if (found) {
      window.sessionStorage.setItem("cryptosignals.key", decodeURIComponent(found[1]));
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return window.sessionStorage.getItem("cryptosignals.key") || "";
  } catch (_) {
    return "";
  }
})();

function api(url) {
  return fetch(url, KEY ? { headers: { Authorization: `Bearer ${KEY}` } } : {});
}

async function apiJson(url) {
  const response = await api(url);
  let body = {};
  try {
    body = await response.json();
  } catch (_) {
    /* not JSON */
  }
  if (!response.ok) throw new Error(body.message || response.statusText);
  return body;
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function fmtTime(iso) {
  return new Date(iso).toISOString().replace("T", " ").slice(0, 19) + "Z";
}

function fmtPct(value, digits = 2) {
  if (value === undefined || value === null) return "-";
  const n = Number(value);
  return (n > 0 ? "+" : "") + n.toFixed(digits) + "%";
}

function fmtRate(value, count) {
  return count ? `${(Number(value || 0) * 100).toFixed(1)}%` : "-";
}

function table(head, rows, attrs = {}) {
  const node = el("table", attrs);
  const tr = el("tr");
  for (const h of head) tr.append(el("th", { scope: "col" }, h));
  node.append(el("thead"), el("tbody"));
  node.tHead.append(tr);
  for (const row of rows) {
    const line = el("tr", row.attrs || {});
    row.cells.forEach((cell, i) => line.append(el(i ? "td" : "th", i ? {} : { scope: "row" }, String(cell))));
    node.tBodies[0].append(line);
  }
  return node;
}

function fmtPrice(value) {
  return value === undefined ? "-" : "$" + Number(value).toLocaleString("en-US", { maximumFractionDigits: 2 });
}

// One coin: its card, its points (time, score, signal), its stream.
class Coin {
  constructor(symbol, parent) {
    this.symbol = symbol;
    this.points = [];
    this.updates = 0;
    this.card = el("article", { class: "card", "data-symbol": symbol, "data-updates": "0" });
    const head = el("div", { class: "head" });
    head.append(el("h3", {}, symbol));
    this.badge = el("span", { class: "badge", "data-role": "signal" }, "...");
    this.score = el("span", { class: "score", "data-role": "score" }, "");
    head.append(this.badge, this.score);
    this.meta = el("p", { class: "meta", "data-role": "meta" }, "waiting for the live feed");
    this.reason = el("p", { class: "reason", "data-role": "reason" }, "");
    this.missing = el("p", { class: "missing", "data-role": "missing" }, "");
    this.chart = svg("svg", { class: "chart", viewBox: "0 0 600 200", role: "img", "data-points": "0" });
    this.chartNote = el("p", { class: "note", "data-role": "chart-note" }, "loading history");
    this.card.append(head, this.meta, this.reason, this.missing, this.chart, this.chartNote);
    parent.append(this.card);
  }

  async loadHistory() {
    try {
      const body = await apiJson(`/signals/${encodeURIComponent(this.symbol)}/history?page_size=${HISTORY_PAGE}`);
      const recorded = (body.entries || []).map((e) => ({ t: Date.parse(e.time), score: e.score, signal: e.signal }));
      this.points = recorded.concat(this.points).sort((a, b) => a.t - b.t);
      this.chartNote.textContent = `${recorded.length} recorded signals (newest ${HISTORY_PAGE} at most), then the streamed ones`;
    } catch (err) {
      this.chartNote.textContent = `history unavailable: ${err.message}`;
    }
    this.draw();
  }

  status(text) {
    if (!this.updates) this.meta.textContent = text;
  }

  // The fallback: this coin's own SSE stream (EventSource reconnects by itself).
  watch() {
    this.card.dataset.transport = "sse";
    const source = new EventSource(`/signals/${encodeURIComponent(this.symbol)}/stream`);
    source.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.kind === "SIGNAL") this.show(event.signal);
      else if (event.kind === "END") {
        source.close();
        this.meta.textContent = `stream ended: ${event.message}`;
        this.card.classList.add("ended");
      }
    };
    source.onerror = () => {
      this.meta.textContent =
        source.readyState === EventSource.CLOSED
          ? "stream unavailable (refused: with SIGNAL_API_KEYS set the SSE stream cannot carry a key)"
          : "stream interrupted, reconnecting";
    };
  }

  show(signal) {
    this.updates += 1;
    this.card.dataset.updates = String(this.updates);
    this.badge.textContent = signal.signal;
    this.badge.className = `badge ${signal.signal.toLowerCase()}`;
    this.score.textContent = Number(signal.score).toFixed(2);
    this.meta.textContent =
      `${fmtTime(signal.timestamp)} · price ${fmtPrice(signal.price)} · confidence ${signal.confidence}` +
      ` · coverage ${Math.round((signal.coverage || 0) * 100)}% · update ${this.updates}` +
      ` · via ${this.card.dataset.transport || "?"}`;
    this.reason.textContent = signal.reason || "";
    const missing = (signal.missingFactors || []).map((m) => m.factor);
    this.missing.textContent = missing.length ? `missing: ${missing.join(", ")}` : "";
    this.points.push({ t: Date.parse(signal.timestamp), score: signal.score, signal: signal.signal });
    this.draw();
  }

  draw() {
    const chart = this.chart;
    chart.replaceChildren();
    const W = 600, H = 200, L = 34, R = 8, T = 8, B = 22;
    const y = (score) => T + (1 - score / 100) * (H - T - B);
    for (const [level, cls] of [[LONG_AT, "long-line"], [50, "mid-line"], [SHORT_AT, "short-line"]]) {
      chart.append(svg("line", { x1: L, x2: W - R, y1: y(level), y2: y(level), class: cls }));
      const label = svg("text", { x: 2, y: y(level) + 4, class: "axis" });
      label.textContent = String(level);
      chart.append(label);
    }
    const points = this.points;
    chart.dataset.points = String(points.length);
    if (!points.length) return;
    const t0 = points[0].t, t1 = points[points.length - 1].t;
    const span = Math.max(t1 - t0, 1);
    const x = (t) => (points.length === 1 ? (L + W - R) / 2 : L + ((t - t0) / span) * (W - L - R));
    const path = points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.score).toFixed(1)}`).join(" ");
    chart.append(svg("path", { d: path, class: "score-line" }));
    for (const p of points) {
      if (p.signal === "LONG") {
        const px = x(p.t), py = y(p.score);
        chart.append(svg("polygon", { points: `${px},${py - 6} ${px - 5},${py + 3} ${px + 5},${py + 3}`, class: "mark long" }));
      } else if (p.signal === "SHORT") {
        const px = x(p.t), py = y(p.score);
        chart.append(svg("polygon", { points: `${px},${py + 6} ${px - 5},${py - 3} ${px + 5},${py - 3}`, class: "mark short" }));
      }
    }
    const from = svg("text", { x: L, y: H - 6, class: "axis" });
    from.textContent = fmtTime(new Date(t0).toISOString());
    const to = svg("text", { x: W - R, y: H - 6, class: "axis end" });
    to.textContent = fmtTime(new Date(t1).toISOString());
    chart.append(from, to);
  }
}

// One WebSocket for every card (GET /ws, service/web/live_socket.py): subscribe once, then SIGNAL
// events per coin. Reconnects with backoff; a socket that closes before any message
// WS_MAX_FAILURES times in a row (no /ws route, refused, a proxy without upgrades) gives way to
// each card's SSE stream.
class LiveFeed {
  constructor(coins) {
    this.coins = new Map(coins.map((c) => [c.symbol, c]));
    this.failures = 0;
    this.attempt = 0;
    this.socket = null;
    this.fellBack = false;
  }

  start() {
    if (typeof WebSocket === "undefined" || params.get("transport") === "sse") {
      this.fallBack("WebSocket not used");
      return;
    }
    this.connect();
  }

  setTransport(name) {
    document.body.dataset.transport = name;
    for (const coin of this.coins.values()) coin.card.dataset.transport = name;
  }

  connect() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const protocols = KEY ? [WS_PROTOCOL, `bearer.${KEY}`] : [WS_PROTOCOL];
    let socket;
    try {
      socket = new WebSocket(`${scheme}://${window.location.host}/ws`, protocols);
    } catch (err) {
      this.closed(false, `WebSocket refused: ${err.message}`);
      return;
    }
    this.socket = socket;
    let heard = false;
    const timer = window.setTimeout(() => socket.close(), WS_OPEN_TIMEOUT_MS);
    socket.onopen = () => {
      window.clearTimeout(timer);
      this.setTransport("websocket");
      socket.send(JSON.stringify({ type: "subscribe", symbols: [...this.coins.keys()] }));
      for (const coin of this.coins.values()) coin.status("subscribed over the WebSocket, waiting for a signal");
    };
    socket.onmessage = (message) => {
      heard = true;
      this.failures = 0;
      this.attempt = 0;
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (_) {
        return;
      }
      const coin = this.coins.get(event.symbol);
      if (event.kind === "SIGNAL" && coin) coin.show(event.signal);
      else if (event.kind === "ERROR" && coin) coin.meta.textContent = `live feed: ${event.code}: ${event.message}`;
    };
    socket.onclose = (event) => {
      window.clearTimeout(timer);
      if (this.socket === socket) this.socket = null;
      this.closed(heard, `WebSocket closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`);
    };
  }

  closed(heard, why) {
    if (!heard) this.failures += 1;
    if (this.failures >= WS_MAX_FAILURES) {
      this.fallBack(`${why}; ${this.failures} sockets in a row failed`);
      return;
    }
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)] * (0.75 + Math.random() / 2);
    this.attempt += 1;
    document.body.dataset.transport = "reconnecting";
    for (const coin of this.coins.values()) {
      coin.meta.textContent = `${why}: reconnecting in ${(delay / 1000).toFixed(1)} s`;
    }
    window.setTimeout(() => this.connect(), delay);
  }

  fallBack(why) {
    if (this.fellBack) return;
    this.fellBack = true;
    document.body.dataset.transport = "sse";
    document.body.dataset.fallback = why;
    for (const coin of this.coins.values()) {
      coin.status(`${why}: using the SSE stream`);
      coin.watch();
    }
  }
}

// The backtest's figures beside its chart: per class and strategy, gross and net position returns.
function backtestTable(report) {
  const classes = new Map((report.classes || []).map((c) => [c.signal, c]));
  const baselines = new Map((report.baselines || []).map((b) => [b.name, b]));
  const rows = [];
  for (const name of ["LONG", "SHORT"]) {
    const c = classes.get(name) || {};
    rows.push({
      attrs: { "data-row": name },
      cells: [name, c.count || 0, fmtRate(c.hitRate, c.count), fmtPct(c.meanPositionReturnPct), fmtPct(c.meanNetReturnPct)],
    });
  }
  const strategies = [
    ["signal", "signal (LONG + SHORT)", report.signalPositions || {}],
    ["always_long", "always long", baselines.get("always_long") || {}],
    ["random_entries", "random entries", baselines.get("random_entries") || {}],
  ];
  for (const [key, label, s] of strategies) {
    rows.push({
      attrs: { "data-row": key },
      cells: [label, s.count || 0, fmtRate(s.hitRate, s.count), fmtPct(s.meanForwardReturnPct), fmtPct(s.meanNetReturnPct)],
    });
  }
  const figures = table(["", "count", "hit rate", "mean gross", "mean net"], rows, { class: "figures" });
  const caption = el("caption");
  const p = report.randomEntries ? Number(report.randomEntries.pValue) : NaN;
  caption.textContent =
    `${report.symbol} ${report.interval}, ${report.horizonBars}-bar positions; net of ${Number(report.feeBps || 0)} bps ` +
    `a side and the funding held. Signal vs random entries: p = ${Number.isNaN(p) ? "-" : p.toFixed(3)}`;
  figures.prepend(caption);
  figures.dataset.pValue = String(p);
  return figures;
}

function backtest() {
  const form = document.getElementById("backtest-form");
  const select = document.getElementById("backtest-symbol");
  const start = document.getElementById("backtest-start");
  const end = document.getElementById("backtest-end");
  const status = document.getElementById("backtest-status");
  const image = document.getElementById("backtest-chart");
  const figures = document.getElementById("backtest-figures");
  for (const symbol of watchlist) select.append(el("option", { value: symbol }, symbol));
  start.value = params.get("start") || "";
  end.value = params.get("end") || "";
  image.addEventListener("load", () => {
    image.hidden = false;
    status.textContent = `${select.value}: the served signal replayed over history (JSON: /backtest/${select.value})`;
  });
  // fetch, not <img src>: an error's JSON message can be shown, and the backtest runs once.
  const run = async () => {
    const query = new URLSearchParams();
    if (start.value.trim()) query.set("start", start.value.trim());
    if (end.value.trim()) query.set("end", end.value.trim());
    const url = `/backtest/${encodeURIComponent(select.value)}/chart?${query}`;
    status.textContent = "running the backtest...";
    image.hidden = true;
    figures.replaceChildren(el("p", { class: "note" }, "computing the figures..."));
    // The report as JSON at the same time: the server computes one report for both requests.
    const json = `/backtest/${encodeURIComponent(select.value)}?${query}`;
    apiJson(json)
      .then((report) => {
        const verdict = el("p", { class: "verdict", "data-role": "verdict" }, report.verdict || "");
        figures.replaceChildren(backtestTable(report), verdict);
        figures.dataset.source = json;
      })
      .catch((err) => figures.replaceChildren(el("p", { class: "note" }, `figures unavailable: ${err.message}`)));
    try {
      const response = await api(url);
      if (!response.ok) {
        let message = response.statusText;
        try {
          message = (await response.json()).message;
        } catch (_) {
          /* not JSON */
        }
        throw new Error(message);
      }
      const png = await response.blob();
      if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
      image.dataset.source = url;
      image.src = URL.createObjectURL(png);
    } catch (err) {
      status.textContent = `backtest unavailable: ${err.message}`;
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  run();
}

// Both profiles' live track records: per profile, one row per coin (recorded signals with a 24 h
// outcome over the last 30 days, hit rates, the record's verdict).
async function trackRecords() {
  const holder = document.getElementById("track-records");
  for (const profile of PROFILES) {
    const box = el("div", { class: "track", "data-profile": profile });
    box.append(el("h3", {}, `${profile} profile`));
    const note = el("p", { class: "note" }, "loading...");
    box.append(note);
    holder.append(box);
    const rows = await Promise.all(
      watchlist.map(async (symbol) => {
        const url = `/signals/${encodeURIComponent(symbol)}/track-record?profile=${profile}`;
        try {
          const r = await apiJson(url);
          const classes = new Map((r.classes || []).map((c) => [c.signal, c]));
          const long = classes.get("LONG") || {};
          const short = classes.get("SHORT") || {};
          const positions = r.signalPositions || {};
          const always = (r.baselines || []).find((b) => b.name === "always_long") || {};
          return {
            attrs: { "data-symbol": symbol },
            cells: [
              symbol,
              r.signalsWithOutcome || 0,
              `${fmtRate(long.hitRate, long.count)} (${long.count || 0})`,
              `${fmtRate(short.hitRate, short.count)} (${short.count || 0})`,
              `${fmtRate(positions.hitRate, positions.count)} (${positions.count || 0})`,
              fmtRate(always.hitRate, always.count),
              r.verdict || "",
            ],
          };
        } catch (err) {
          return { attrs: { "data-symbol": symbol, class: "error" }, cells: [symbol, "-", "-", "-", "-", "-", err.message] };
        }
      }),
    );
    note.textContent = "24 h outcomes of the recorded signals, last 30 days (hit rate, then count)";
    box.append(
      table(["coin", "with outcome", "LONG hit", "SHORT hit", "positions hit", "always long hit", "verdict"], rows, {
        class: "figures",
      }),
    );
  }
}

const cards = document.getElementById("cards");
const coins = watchlist.map((symbol) => new Coin(symbol, cards));
for (const coin of coins) {
  coin.draw();
  coin.loadHistory();
}
new LiveFeed(coins).start();
backtest();
trackRecords();
