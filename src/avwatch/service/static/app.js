// avwatch dashboard: mosaic, stream page, incidents. Plain JS, no build step, works offline.
// Data comes from the API; live changes arrive as server-sent events (/api/events).
"use strict";

const SEVERE = new Set(["error", "critical"]);
const THUMB_REFRESH_MS = 3000;
const METER_FLOOR_DB = -60;   // a meter's scale: -60 dBFS to 0
const METER_STALE_MS = 1500;  // no reading this long: the meters fall flat
const LOUDNESS_OFF_LU = 2;    // short-term this far off target shows amber
const PLOT_WINDOW_S = 300;
// The plots of a stream page, as the detectors and the monitor declare them (/api/plots):
// { title, signals, min, max, target_setting, detector }.
let PLOTS = [];
const COLOURS = ["#58a6ff", "#f0883e", "#3fb950", "#d2a8ff"];

const state = {
  streams: new Map(),      // id -> stream (spec + status)
  open: new Map(),         // incident id -> open incident
  token: localStorage.getItem("avwatch-token") || "",
  view: null,              // the current view's update hooks
};

// -- API ------------------------------------------------------------------------------
function withToken(path) {
  if (!state.token) return path;
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(state.token);
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const response = await fetch(path, { ...options, headers });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.detail ? JSON.stringify(body.detail) : response.statusText);
  }
  return response.status === 204 ? null : response.json();
}

async function loadPlots() {
  PLOTS = await api("/api/plots");
}

async function loadStreams() {
  const streams = await api("/api/streams");
  state.streams = new Map(streams.map((s) => [s.id, s]));
}

async function loadOpenIncidents() {
  const page = await api("/api/incidents?open=true&limit=1000");
  state.open = new Map(page.items.map((i) => [i.id, i]));
}

// -- live updates ---------------------------------------------------------------------
let source = null;
function connect() {
  if (source) source.close();
  source = new EventSource(withToken("/api/events"));
  const dot = document.getElementById("connection");
  source.onopen = () => dot.classList.add("live");
  source.onerror = () => dot.classList.remove("live");
  source.addEventListener("status", (e) => {
    const event = JSON.parse(e.data);
    const stream = state.streams.get(event.stream);
    if (!stream) return;
    stream.status = event.status;
    state.view?.onStatus?.(stream, event.signals);
    updateSummary();
  });
  source.addEventListener("incident", (e) => {
    const incident = JSON.parse(e.data).incident;
    if (incident.open) state.open.set(incident.id, incident);
    else state.open.delete(incident.id);
    state.view?.onIncident?.(incident);
    updateSummary();
  });
  source.addEventListener("levels", (e) => {
    const event = JSON.parse(e.data);
    const stream = state.streams.get(event.stream);
    if (!stream) return;
    stream.levels = event.levels;
    stream.levelsAt = Date.now();
    state.view?.onLevels?.(stream);
  });
  source.addEventListener("streams", async () => {
    await loadStreams();
    state.view?.onStreams?.();
  });
}

// -- helpers --------------------------------------------------------------------------
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function openOf(streamId) {
  return [...state.open.values()].filter((i) => i.stream === streamId);
}

// The analysis tier, and where a patrolled stream is analysed in full now, why.
function tierText(status) {
  const tier = status.analysis || "full";
  const e = status.escalation;
  if (!e) return tier;
  return e.analysing === "full" ? `patrol → full (${e.why || "rotation"})`
    : "patrol (keyframes, lip sync not judged)";
}

function tileState(stream) {
  if (!stream.enabled) return "disabled";
  const status = stream.status || {};
  if (status.state === "input_lost") return "input_lost";
  if (status.state === "overloaded") return "overloaded";
  if (status.state === "pending") return "pending";  // waiting for a cluster node
  const open = openOf(stream.id);
  if (open.some((i) => SEVERE.has(i.severity))) return "alarm";
  if (open.length) return "warning";
  return status.state === "ok" ? "ok" : "starting";
}

function human(bps) {
  if (!bps) return "–";
  return bps >= 1e6 ? (bps / 1e6).toFixed(1) + " Mb/s" : (bps / 1e3).toFixed(0) + " kb/s";
}

function when(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "";
}

function updateSummary() {
  const counts = {};
  for (const stream of state.streams.values()) {
    const s = tileState(stream);
    counts[s] = (counts[s] || 0) + 1;
  }
  document.getElementById("summary").textContent =
    `${state.streams.size} streams · ${counts.alarm || 0} alarm · ${counts.warning || 0} warning · ` +
    `${(counts.input_lost || 0) + (counts.overloaded || 0)} blind · ${state.open.size} open incidents`;
}

// -- mosaic ---------------------------------------------------------------------------
function mosaicView(root) {
  const search = el("input", { type: "search", placeholder: "Filter by name or id", id: "filter" });
  const stateFilter = el("select", { id: "state-filter" },
    ["all", "alarm", "warning", "ok", "input_lost", "overloaded", "pending", "starting", "disabled"].map((s) =>
      el("option", { value: s }, s === "all" ? "every state" : s.replace("_", " "))));
  const count = el("span", { class: "count" });
  const grid = el("div", { class: "mosaic", id: "mosaic" });
  root.append(el("div", { class: "toolbar" }, search, stateFilter, count), grid);
  const tiles = new Map();
  const visible = new Set();
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const id = entry.target.dataset.stream;
      if (entry.isIntersecting) visible.add(id); else visible.delete(id);
    }
  });

  function tile(stream) {
    const node = el("div", { class: "tile", dataset: { stream: stream.id },
      onclick: () => { location.hash = "#/stream/" + encodeURIComponent(stream.id); } },
      el("div", { class: "screen" }, el("img", { class: "pic", alt: "" }),
        el("div", { class: "meters" }), el("div", { class: "loudness" })),
      el("div", { class: "meta" },
        el("div", { class: "name" }), el("div", { class: "state" }), el("div", { class: "nums" }),
        el("div", { class: "tier" }), el("div", { class: "badges" })));
    observer.observe(node);
    return node;
  }

  function paint(stream) {
    const node = tiles.get(stream.id);
    if (!node) return;
    const s = tileState(stream);
    node.dataset.state = s;
    node.querySelector(".name").textContent = stream.name;
    node.querySelector(".state").textContent = s.replace("_", " ");
    const status = stream.status || {};
    node.querySelector(".nums").textContent =
      `${human(status.bitrate_bps)} · lag ${(status.lag_s ?? 0).toFixed(2)} s · ${status.fps ?? 0} fps`;
    const tier = node.querySelector(".tier");
    tier.textContent = tierText(status);
    tier.dataset.tier = status.escalation ? status.escalation.analysing : (status.analysis || "full");
    const badges = node.querySelector(".badges");
    badges.replaceChildren(...openOf(stream.id).map((i) =>
      el("span", { class: "badge " + (SEVERE.has(i.severity) ? "" : "warning"), dataset: { type: i.type } },
        i.type.replace("_", " "))));
  }

  function filter() {
    const text = search.value.trim().toLowerCase();
    const wanted = stateFilter.value;
    let shown = 0;
    for (const stream of state.streams.values()) {
      const node = tiles.get(stream.id);
      const match = (!text || stream.name.toLowerCase().includes(text) || stream.id.includes(text)) &&
        (wanted === "all" || tileState(stream) === wanted);
      node.hidden = !match;
      shown += match;
    }
    count.textContent = `${shown} of ${state.streams.size}`;
  }

  function build() {
    tiles.clear();
    grid.replaceChildren();
    for (const stream of state.streams.values()) {
      const node = tile(stream);
      tiles.set(stream.id, node);
      grid.append(node);
      paint(stream);
    }
    filter();
  }

  function refreshThumbnails() {
    const now = Date.now();
    for (const id of visible) {
      const stream = state.streams.get(id);
      if (!stream || !stream.status || stream.status.state !== "ok" && stream.status.state !== "overloaded") continue;
      tiles.get(id).querySelector(".pic").src =
        withToken(`/api/streams/${encodeURIComponent(id)}/thumbnail?t=${now}`);
    }
  }

  // Meters are painted once per animation frame, for the tiles on screen only: a
  // hundred streams send four readings a second each.
  const dirty = new Set();
  let frame = 0;
  function meterLater(stream) {
    dirty.add(stream.id);
    if (!frame) frame = requestAnimationFrame(() => {
      frame = 0;
      for (const id of dirty) if (visible.has(id)) paintMeters(tiles.get(id), state.streams.get(id));
      dirty.clear();
    });
  }

  function fallFlat() {
    const now = Date.now();
    for (const id of visible) {
      const stream = state.streams.get(id);
      if (stream?.levels && now - (stream.levelsAt || 0) > METER_STALE_MS) {
        stream.levels = null;
        meterLater(stream);
      }
    }
  }

  function fitWall() {
    if (!document.body.classList.contains("wall")) return;
    grid.style.gridTemplateColumns = `repeat(${wallColumns(grid.querySelectorAll(".tile:not([hidden])").length)}, 1fr)`;
  }

  search.addEventListener("input", () => { filter(); fitWall(); });
  stateFilter.addEventListener("change", () => { filter(); fitWall(); });
  window.addEventListener("resize", fitWall);
  build();
  fitWall();
  for (const stream of state.streams.values()) if (stream.levels) { stream.levelsAt = Date.now(); meterLater(stream); }
  setTimeout(refreshThumbnails, 200);
  const timers = [setInterval(refreshThumbnails, THUMB_REFRESH_MS), setInterval(fallFlat, 500)];
  return {
    onStatus: (stream) => { paint(stream); },
    onLevels: meterLater,
    onIncident: (incident) => { const s = state.streams.get(incident.stream); if (s) paint(s); filter(); },
    onStreams: () => { build(); fitWall(); },
    close: () => { timers.forEach(clearInterval); observer.disconnect(); window.removeEventListener("resize", fitWall); },
  };
}

// The fewest columns whose rows of 16:9 tiles (and their name line) fit the screen.
function wallColumns(count) {
  const width = window.innerWidth, height = window.innerHeight;
  for (let columns = 1; columns < count; columns++) {
    const tileHeight = (width / columns) * 9 / 16 + 28;
    if (Math.ceil(count / columns) * tileHeight <= height) return columns;
  }
  return Math.max(1, count);
}

// One bar per channel: RMS filled, the peak a line, the layout's name under it; the
// short-term loudness against its target beside them.
function paintMeters(node, stream) {
  if (!node || !stream) return;
  const levels = stream.levels;
  const meters = node.querySelector(".meters");
  const names = levels ? levels.channels : [];
  if (meters.children.length !== names.length) {
    meters.replaceChildren(...names.map((name) => el("div", { class: "meter", dataset: { channel: name } },
      el("div", { class: "bar" }, el("div", { class: "rms" }), el("div", { class: "peak" })),
      el("span", {}, name))));
  }
  const height = (db) => Math.max(0, Math.min(1, (db - METER_FLOOR_DB) / -METER_FLOOR_DB)) * 100;
  names.forEach((name, k) => {
    const meter = meters.children[k];
    meter.querySelector(".rms").style.height = height(levels.rms_dbfs[k]) + "%";
    meter.querySelector(".peak").style.bottom = height(levels.peak_dbfs[k]) + "%";
    meter.dataset.rms = levels.rms_dbfs[k];
    meter.classList.toggle("hot", levels.peak_dbfs[k] > -1);
  });
  const loudness = node.querySelector(".loudness");
  const lufs = levels?.short_term_lufs;
  loudness.textContent = lufs == null ? "" : `${lufs.toFixed(1)} LUFS`;
  loudness.classList.toggle("off", lufs != null && levels.target_lufs != null &&
    Math.abs(lufs - levels.target_lufs) > LOUDNESS_OFF_LU);
  loudness.title = levels?.target_lufs != null ? `short-term loudness, target ${levels.target_lufs}` : "";
}

// -- stream page ----------------------------------------------------------------------
function drawPlot(canvas, plot, signals, incidents, now, target) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  // The last five minutes, or less while there is less: the data fills the width.
  const first = Math.min(...plot.signals.map((name) => (signals[name] || [[now]])[0][0]));
  const start = Math.max(now - PLOT_WINDOW_S, Math.min(first, now - 30));
  const x = (t) => ((t - start) / (now - start)) * width;
  // Incidents of this stream as bands on the time axis.
  g.fillStyle = "rgba(229, 83, 75, 0.25)";
  for (const i of incidents) {
    const a = Date.parse(i.started_at) / 1000;
    const b = i.ended_at ? Date.parse(i.ended_at) / 1000 : now;
    if (b >= start) g.fillRect(x(Math.max(a, start)), 0, Math.max(2, x(b) - x(Math.max(a, start))), height);
  }
  let lo = plot.min ?? undefined, hi = plot.max ?? undefined;
  const points = plot.signals.flatMap((name) => (signals[name] || []).filter((p) => p[0] >= start));
  const values = points.flatMap((p) => [p[1], p[2]]).filter((v) => Number.isFinite(v));
  if (target !== undefined) values.push(target);
  if (lo === undefined) lo = values.length ? Math.min(...values) : 0;
  if (hi === undefined) hi = values.length ? Math.max(...values) : 1;
  if (hi - lo < 1e-9) { hi = lo + 1; }
  const y = (v) => height - 4 - ((v - lo) / (hi - lo)) * (height - 8);
  if (target !== undefined) {
    g.strokeStyle = "#8b95a1"; g.setLineDash([4, 4]);
    g.beginPath(); g.moveTo(0, y(target)); g.lineTo(width, y(target)); g.stroke(); g.setLineDash([]);
  }
  plot.signals.forEach((name, k) => {
    const series = (signals[name] || []).filter((p) => p[0] >= start);
    g.strokeStyle = COLOURS[k % COLOURS.length];
    g.beginPath();
    series.forEach((p, n) => {
      const v = Math.max(lo, Math.min(hi, (p[1] + p[2]) / 2));
      if (n) g.lineTo(x(p[0]), y(v)); else g.moveTo(x(p[0]), y(v));
    });
    g.stroke();
  });
  g.fillStyle = "#8b95a1"; g.font = "11px system-ui";
  g.fillText(hi.toFixed(hi < 10 ? 2 : 0), 2, 11); g.fillText(lo.toFixed(lo < 10 && lo > -10 ? 2 : 0), 2, height - 2);
}

function streamView(root, id) {
  const stream = state.streams.get(id);
  if (!stream) { root.append(el("p", {}, `No stream ${id}.`)); return {}; }
  const signals = {};
  let incidents = [];
  const img = el("img", { alt: "" });
  const info = el("div", { id: "stream-info" });
  const list = el("ul", { id: "stream-incidents" });
  const settingsText = el("pre", { id: "settings" });
  let settings = {};  // every detector's effective options: where target lines come from
  const canvases = PLOTS.map((plot) => el("canvas", { dataset: { series: plot.signals.join(",") } }));
  root.append(
    el("div", { class: "stream-head" }, img, info),
    el("div", { class: "plots" }, PLOTS.map((plot, k) =>
      el("div", { class: "plot", hidden: "" }, el("h3", {}, plot.title), canvases[k]))),
    el("h2", {}, "Incidents, last five minutes"), list,
    el("h2", {}, "Detector settings"), settingsText);
  api(`/api/streams/${encodeURIComponent(id)}/settings`).then((all) => {
    settingsText.textContent = JSON.stringify(all, null, 2);
    settings = all;
  });

  function paintInfo() {
    const s = stream.status || {};
    info.replaceChildren(
      el("h1", {}, stream.name), el("div", { class: "muted" }, stream.url),
      el("div", { class: "state", dataset: { state: tileState(stream) } }, tileState(stream).replace("_", " ")),
      el("div", {}, `${human(s.bitrate_bps)} · ${s.fps ?? 0} fps · lag ${(s.lag_s ?? 0).toFixed(2)} s · ` +
        `${s.reconnects ?? 0} reconnects · ${s.dropped_samples ?? 0} samples dropped by avwatch`),
      el("div", { class: "tier" }, "analysis: " + tierText(s) + (s.escalation
        ? ` · ${s.escalation.escalations} escalations · ${s.escalation.rotations} slices · ` +
          `${s.escalation.full_refused} refused (no full slot)` : "")),
      ...(s.last_error ? [el("div", { class: "muted" }, s.last_error)] : []));
    img.src = withToken(`/api/streams/${encodeURIComponent(id)}/thumbnail?t=${Date.now()}`);
  }

  function paintIncidents() {
    list.replaceChildren(...incidents.map((i) =>
      el("li", { dataset: { incident: i.id, type: i.type } },
        `${i.type} ${i.key ? "(" + i.key + ") " : ""}${when(i.started_at)} – ${i.open ? "open" : when(i.ended_at)}`)));
  }

  function paintPlots() {
    const now = Date.now() / 1000;
    PLOTS.forEach((plot, k) => {
      // A signal this stream does not have (no audio, no TS, no A/V sync) gets no plot.
      const present = plot.signals.some((name) => (signals[name] || []).length);
      canvases[k].parentElement.hidden = !present;
      if (!present) return;
      const target = plot.target_setting ? settings[plot.detector]?.[plot.target_setting] : undefined;
      drawPlot(canvases[k], plot, signals, incidents, now, target ?? undefined);
      canvases[k].dataset.incidents = String(incidents.length);
    });
  }

  async function loadIncidents() {
    const since = new Date(Date.now() - PLOT_WINDOW_S * 1000).toISOString();
    incidents = (await api(`/api/incidents?stream=${encodeURIComponent(id)}&since=${since}&limit=1000`)).items;
    paintIncidents();
  }

  (async () => {
    Object.assign(signals, await api(`/api/streams/${encodeURIComponent(id)}/signals`));
    await loadIncidents();
    paintInfo(); paintPlots();
  })();
  return {
    onStatus: (s, fresh) => {
      if (s.id !== id) return;
      for (const [name, points] of Object.entries(fresh || {})) (signals[name] ||= []).push(...points);
      paintInfo(); paintPlots();
    },
    onIncident: async (incident) => {
      if (incident.stream !== id) return;
      await loadIncidents(); paintPlots(); paintInfo();
    },
  };
}

// -- incidents page -------------------------------------------------------------------
function incidentsView(root, focus) {
  const type = el("input", { placeholder: "type, e.g. black", id: "type-filter" });
  const severity = el("select", { id: "severity-filter" },
    ["any", "critical", "error", "warning", "info"].map((s) => el("option", { value: s }, s === "any" ? "any severity" : s)));
  const openFilter = el("select", { id: "open-filter" },
    el("option", { value: "" }, "open and closed"), el("option", { value: "true" }, "open"),
    el("option", { value: "false" }, "closed"));
  const message = el("span", { class: "muted", id: "message" });
  const body = el("tbody");
  root.append(el("div", { class: "toolbar" }, type, severity, openFilter, message),
    el("table", { id: "incidents" }, el("thead", {}, el("tr", {},
      ["Stream", "Type", "Severity", "Started", "Ended", "Details", "Evidence", ""].map((h) => el("th", {}, h)))), body));

  async function acknowledge(id) {
    try {
      await api(`/api/incidents/${id}/ack`, { method: "POST" });
      message.textContent = "acknowledged";
      await load();
    } catch (error) {
      message.textContent = "acknowledge failed: " + error.message + (state.token ? "" : " (enter the API token)");
    }
  }

  function evidence(i) {
    const base = `/api/incidents/${i.id}/evidence/`;
    return el("span", { class: "evidence" },
      el("img", { src: withToken(base + "before.png"), alt: "before", onerror: (e) => e.target.remove() }),
      el("img", { src: withToken(base + "during.png"), alt: "during", onerror: (e) => e.target.remove() }),
      el("video", { class: "clip", controls: "", preload: "metadata", src: withToken(base + "clip.mp4"),
        onerror: (e) => e.target.remove() }),
      el("a", { href: withToken(base + "clip.ts"), download: `${i.stream}-${i.type}.ts` }, "clip.ts"));
  }

  async function load() {
    const query = new URLSearchParams({ limit: "200" });
    if (type.value.trim()) query.set("type", type.value.trim());
    if (openFilter.value) query.set("open", openFilter.value);
    // An alert's link names one incident: show it alone, with the way back to all.
    let items = focus ? [await api(`/api/incidents/${encodeURIComponent(focus)}`)]
      : (await api("/api/incidents?" + query)).items;
    if (severity.value !== "any") items = items.filter((i) => i.severity === severity.value);
    body.replaceChildren(...items.map((i) => el("tr", { class: i.open ? "open" : "", dataset: { incident: i.id, type: i.type } },
      el("td", {}, el("a", { href: "#/stream/" + encodeURIComponent(i.stream) }, i.stream)),
      el("td", {}, i.type + (i.key ? ` (${i.key})` : "")),
      el("td", {}, i.severity),
      el("td", {}, when(i.started_at)),
      el("td", {}, i.open ? "open" : when(i.ended_at)),
      el("td", { class: "muted" }, JSON.stringify(i.details)),
      el("td", {}, evidence(i)),
      el("td", {}, i.acknowledged_at
        ? el("span", { class: "muted acked" }, "acknowledged " + when(i.acknowledged_at))
        : el("button", { class: "ack", onclick: () => acknowledge(i.id) }, "Acknowledge")))));
  }

  for (const input of [type, severity, openFilter]) input.addEventListener("change", load);
  if (focus) {
    for (const input of [type, severity, openFilter]) input.hidden = true;
    message.replaceChildren(el("a", { href: "#/incidents", id: "all-incidents" }, "all incidents"));
  }
  load().catch((error) => { message.textContent = "cannot load: " + error.message; });
  let pending = null;
  return {
    onIncident: () => { clearTimeout(pending); pending = setTimeout(load, 300); },
  };
}

// -- router ---------------------------------------------------------------------------
async function route() {
  state.view?.close?.();
  const root = document.getElementById("view");
  root.replaceChildren();
  const hash = location.hash || "#/";
  for (const link of document.querySelectorAll("header nav a")) {
    link.classList.toggle("active", link.getAttribute("href") === hash.split("/").slice(0, 2).join("/"));
  }
  // The wall: the mosaic alone, fitted to the screen, for a TV on the wall.
  document.body.classList.toggle("wall", hash === "#/wall");
  if (hash.startsWith("#/stream/")) state.view = streamView(root, decodeURIComponent(hash.slice(9)));
  else if (hash.startsWith("#/incidents/")) state.view = incidentsView(root, decodeURIComponent(hash.slice(12)));
  else if (hash.startsWith("#/incidents")) state.view = incidentsView(root);
  else state.view = mosaicView(root);
}

async function start() {
  const token = document.getElementById("token");
  token.value = state.token;
  token.addEventListener("change", async () => {
    state.token = token.value.trim();
    localStorage.setItem("avwatch-token", state.token);
    connect();
    await refresh();
  });
  connect();
  await refresh();
  window.addEventListener("hashchange", route);
}

async function refresh() {
  try {
    await Promise.all([loadStreams(), loadOpenIncidents(), loadPlots()]);
  } catch (error) {
    document.getElementById("view").replaceChildren(el("p", {}, "Cannot load: " + error.message));
    return;
  }
  updateSummary();
  await route();
  document.body.dataset.ready = "true";
}

start();
