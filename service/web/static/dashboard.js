// The dashboard: one card per coin (live signal from its SSE stream, recorded score history as an
// SVG chart with LONG/SHORT marks), and the backtest chart (a PNG drawn by the server).
// Everything it loads comes from this origin; the page's CSP allows nothing else.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const LONG_AT = 65;
const SHORT_AT = 35;
const HISTORY_PAGE = 1000; // the newest 1000 recorded signals: about 3.5 days at 5-minute intervals

const params = new URLSearchParams(window.location.search);
const watchlist = (params.get("symbols") || document.body.dataset.watchlist || "BTC")
  .split(",")
  .map((s) => s.trim().toUpperCase())
  .filter((s) => /^[A-Z0-9_\-/]{1,30}$/.test(s))
  .slice(0, 4); // each card holds a stream; a browser opens 6 connections per host

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
    this.meta = el("p", { class: "meta", "data-role": "meta" }, "waiting for the stream");
    this.reason = el("p", { class: "reason", "data-role": "reason" }, "");
    this.missing = el("p", { class: "missing", "data-role": "missing" }, "");
    this.chart = svg("svg", { class: "chart", viewBox: "0 0 600 200", role: "img", "data-points": "0" });
    this.chartNote = el("p", { class: "note", "data-role": "chart-note" }, "loading history");
    this.card.append(head, this.meta, this.reason, this.missing, this.chart, this.chartNote);
    parent.append(this.card);
  }

  async loadHistory() {
    try {
      const response = await fetch(`/signals/${encodeURIComponent(this.symbol)}/history?page_size=${HISTORY_PAGE}`);
      const body = await response.json();
      if (!response.ok) throw new Error(body.message || response.statusText);
      const recorded = (body.entries || []).map((e) => ({ t: Date.parse(e.time), score: e.score, signal: e.signal }));
      this.points = recorded.concat(this.points).sort((a, b) => a.t - b.t);
      this.chartNote.textContent = `${recorded.length} recorded signals (newest ${HISTORY_PAGE} at most), then the streamed ones`;
    } catch (err) {
      this.chartNote.textContent = `history unavailable: ${err.message}`;
    }
    this.draw();
  }

  watch() {
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
      if (source.readyState !== EventSource.CLOSED) this.meta.textContent = "stream interrupted, reconnecting";
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
      ` · coverage ${Math.round((signal.coverage || 0) * 100)}% · update ${this.updates}`;
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

function backtest() {
  const form = document.getElementById("backtest-form");
  const select = document.getElementById("backtest-symbol");
  const start = document.getElementById("backtest-start");
  const end = document.getElementById("backtest-end");
  const status = document.getElementById("backtest-status");
  const image = document.getElementById("backtest-chart");
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
    try {
      const response = await fetch(url);
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

const cards = document.getElementById("cards");
for (const symbol of watchlist) {
  const coin = new Coin(symbol, cards);
  coin.draw();
  coin.loadHistory();
  coin.watch();
}
backtest();
