// The console: one refresh loop over GET /cluster (backing off while it fails), reading the
// view versions (GET /admin/views) every few rounds, and a key lookup that follows its row
// over Server-Sent Events. Unknown figures read "unknown".
"use strict";

const EVERY_MS = 2000;
const MOST_MS = 30000;
const VERSIONS_EVERY = 5;     // rounds: /admin/views asks Kafka for every version's positions
let previous = null;          // the last answer, for rates
let delay = EVERY_MS;
let round = 0;
let versionsAsked = false;    // one /admin/views request at a time: it may take seconds
const recoveryPeak = {};      // per worker: most records left in the recovery seen running
let follow = null;

const $ = (id) => document.getElementById(id);

function known(value) { return value !== null && value !== undefined && !Number.isNaN(value); }

function fmt(value, digits = 0) {
  if (!known(value)) return "unknown";
  return Number(value).toLocaleString("en-US", {maximumFractionDigits: digits,
                                                minimumFractionDigits: digits});
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (text === "unknown") td.classList.add("unknown");
  if (cls) for (const c of cls.split(" ")) td.classList.add(c);
  row.appendChild(td);
  return td;
}

function setValue(id, text) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("unknown", text === "unknown");
}

function fill(tableId, rows) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren(...rows);
}

function sumKnown(values) {
  if (values.length === 0 || values.some((v) => !known(v))) return null;
  return values.reduce((a, b) => a + b, 0);
}

function answered(cluster) { return cluster.workers.filter((w) => w.answered); }

// Rate of a per-worker total between two answers; unknown unless every worker answered both.
function rate(now, before, pick) {
  if (!before) return null;
  let total = 0;
  for (const worker of now.workers) {
    const old = before.workers.find((w) => w.worker === worker.worker);
    if (!worker.answered || !old || !old.answered) return null;
    const a = pick(worker), b = pick(old), seconds = worker.at - old.at;
    if (!known(a) || !known(b) || seconds <= 0) return null;
    total += Math.max(0, a - b) / seconds;
  }
  return total;
}

function utcTime(date) { return `${date.toISOString().slice(11, 19)} UTC`; }

function shortTopic(topic) {
  const dot = topic.indexOf(".");
  return dot >= 0 ? topic.slice(dot + 1) : topic;
}

function partitionList(byTopic) {
  const parts = Object.entries(byTopic || {}).map(
    ([topic, ps]) => `${shortTopic(topic)}: ${ps.join(", ")}`);
  return parts.length ? parts.join("\n") : "none";
}

function renderTotals(cluster) {
  const live = answered(cluster);
  const partial = live.length < cluster.workers.length;
  const accepted = partial ? null : sumKnown(live.map((w) => w.commands.accepted));
  const rejected = partial ? null : sumKnown(live.map((w) => w.commands.rejected));
  const decided = (w) => w.commands && (w.commands.accepted + w.commands.rejected);
  setValue("commands-rate", fmt(rate(cluster, previous, decided), 1));
  setValue("rejections-rate", fmt(rate(cluster, previous, (w) => w.commands && w.commands.rejected), 1));
  setValue("commands-accepted", fmt(accepted));
  setValue("commands-rejected", fmt(rejected));
  setValue("letters-waiting", fmt(cluster.dead_letters.waiting));
}

function renderWorkers(cluster) {
  fill("workers", cluster.workers.map((w) => {
    const row = document.createElement("tr");
    row.dataset.worker = w.worker;
    const name = cell(row, w.worker);
    if (w.worker === cluster.asked) name.textContent += " (this page)";
    if (!w.answered) {
      cell(row, `did not answer: ${w.error}`, "bad");
      for (let i = 0; i < 4; i++) cell(row, "unknown");
      return row;
    }
    const s = w.state;
    const state = s.rebalancing ? "rebalancing" : s.recovering ? "recovering"
      : s.ready ? "ready" : "starting";
    cell(row, state, s.ready ? "ok" : "warn");
    cell(row, fmt(s.rebalances), "num");
    const left = s.recovery_remaining.active + s.recovery_remaining.standby;
    const td = cell(row, left ? `${fmt(left)} records to restore` : "done");
    if (left) {
      recoveryPeak[w.worker] = Math.max(recoveryPeak[w.worker] || 0, left);
      const bar = document.createElement("progress");
      bar.max = recoveryPeak[w.worker];
      bar.value = recoveryPeak[w.worker] - left;
      bar.setAttribute("aria-label", `recovery of ${w.worker}`);
      td.prepend(bar, " ");
    } else {
      delete recoveryPeak[w.worker];
    }
    const log = Object.entries(w.partitions.active).find(([t]) => shortTopic(t) === "events");
    cell(row, log ? log[1].join(", ") : "none");
    const all = cell(row, "");
    const details = document.createElement("details");
    const count = (m) => Object.values(m || {}).reduce((n, ps) => n + ps.length, 0);
    const summary = document.createElement("summary");
    summary.textContent = `${count(w.partitions.active)} active, ${count(w.partitions.standby)} standby`;
    const pre = document.createElement("pre");
    pre.textContent = `active\n${partitionList(w.partitions.active)}\n\nstandby\n${partitionList(w.partitions.standby)}`;
    details.append(summary, pre);
    all.appendChild(details);
    return row;
  }));
}

function projectionNames(cluster) {
  const names = new Set();
  for (const w of answered(cluster)) for (const n of Object.keys(w.projections)) names.add(n);
  return [...names].sort();
}

function renderViews(cluster) {
  const live = answered(cluster);
  const partial = live.length < cluster.workers.length;
  const rows = [], positions = [];
  for (const name of projectionNames(cluster)) {
    const parts = live.map((w) => w.projections[name]).filter(Boolean);
    const counts = parts.map((p) => p.rows_estimate).filter(known);
    const lags = parts.flatMap((p) => Object.values(p.partitions));
    const worst = (pick) => {
      const values = parts.map(pick).filter(known);
      return values.length ? Math.max(...values) : null;
    };
    const row = document.createElement("tr");
    row.dataset.view = name;
    cell(row, name);
    cell(row, counts.length ? fmt(counts.reduce((a, b) => a + b, 0)) + (partial ? " (partial)" : "")
      : "unknown", "num").dataset.field = "rows";
    cell(row, fmt(rate(cluster, previous, (w) => w.projections[name] && w.projections[name].applied_total), 1),
      "num").dataset.field = "events-rate";
    cell(row, fmt(partial ? null : sumKnown(parts.map((p) => p.applied_total))), "num").dataset.field = "applied";
    cell(row, fmt(worst((p) => p.latency_ms.p50), 1), "num").dataset.field = "p50";
    cell(row, fmt(worst((p) => p.latency_ms.p99), 1), "num").dataset.field = "p99";
    cell(row, fmt(partial || !lags.length ? null : sumKnown(lags.map((l) => l.records))), "num").dataset.field = "lag-records";
    const seconds = lags.map((l) => l.seconds);
    cell(row, fmt(partial || !lags.length || seconds.some((s) => !known(s)) ? null : Math.max(...seconds), 1),
      "num").dataset.field = "lag-seconds";
    rows.push(row);
    for (const w of live) {
      const part = w.projections[name];
      if (!part) continue;
      for (const [p, lag] of Object.entries(part.partitions)) {
        const r = document.createElement("tr");
        r.dataset.view = name;
        r.dataset.partition = p;
        cell(r, name);
        cell(r, p, "num");
        cell(r, w.worker);
        cell(r, fmt(lag.applied), "num").dataset.field = "position";
        const end = known(lag.records) ? (known(lag.applied) ? lag.applied + 1 : 0) + lag.records : null;
        cell(r, fmt(end), "num").dataset.field = "log-end";
        cell(r, fmt(lag.records), "num").dataset.field = "lag-records";
        cell(r, fmt(lag.seconds, 1), "num").dataset.field = "lag-seconds";
        positions.push(r);
      }
    }
  }
  fill("views", rows);
  positions.sort((a, b) => (a.dataset.view + a.dataset.partition.padStart(4, "0")).localeCompare(
    b.dataset.view + b.dataset.partition.padStart(4, "0")));
  fill("positions", positions);
}

function renderLetters(cluster) {
  const letters = cluster.dead_letters.newest;
  if (!letters.length) {
    const row = document.createElement("tr");
    const td = cell(row, "none waiting");
    td.colSpan = 4;
    fill("letters", [row]);
    return;
  }
  fill("letters", letters.map((l) => {
    const row = document.createElement("tr");
    row.dataset.letter = l.id;
    cell(row, l.parked_at.replace("T", " ").slice(0, 19));
    cell(row, `${shortTopic(l.source_topic)}[${l.source_partition}]@${l.source_offset}`).dataset.field = "origin";
    cell(row, fmt(l.attempts), "num");
    cell(row, l.error, "error").dataset.field = "error";
    return row;
  }));
}

function renderLookupViews(cluster) {
  const select = $("lookup-view");
  if (select.options.length) return;
  for (const [name, view] of Object.entries(cluster.views)) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = view.live ? name : `${name} (no live updates: windowed)`;
    select.appendChild(option);
  }
}

const STATES = {
  live: "serving reads",
  resident: "folded by the event-log agent beside the live version",
  building: "being built from the start of the log, not caught up yet",
  ready: "built and caught up with the log: can be switched to",
  retired: "no longer built",
  declared: "declared in its module, never built",
  former: "older than the resident version, folded by nothing: retire it or rebuild it",
};

function total(parts, pick) { return parts.reduce((n, p) => n + pick(p), 0); }

function renderVersions(versions) {
  fill("versions", versions.map((v) => {
    const row = document.createElement("tr");
    row.dataset.view = v.view;
    row.dataset.version = v.version;
    cell(row, v.view);
    cell(row, `v${v.version}`, "num");
    const state = cell(row, v.state || "unknown",
      {live: "ok", ready: "ok", building: "warn"}[v.state] || "");
    state.dataset.field = "state";
    state.title = STATES[v.state] || "";
    const parts = v.partitions;
    if (!parts) {
      for (const field of ["position", "behind", "partitions"]) {
        cell(row, "unknown", "num").dataset.field = field;
      }
      row.lastChild.title = "positions are not read for a version that is not built";
      return row;
    }
    const folded = total(parts, (p) => p.folded), end = total(parts, (p) => p.end);
    const position = cell(row, `${fmt(folded)} / ${fmt(end)}`, "num");
    position.dataset.field = "position";
    const bar = document.createElement("progress");
    bar.max = Math.max(end, 1);
    bar.value = end ? folded : 1;
    bar.setAttribute("aria-label", `${v.view} v${v.version} folded of the log`);
    position.prepend(bar, " ");
    cell(row, fmt(total(parts, (p) => p.behind)), "num").dataset.field = "behind";
    cell(row, parts.map((p) => `${p.partition}: ${fmt(p.folded)}/${fmt(p.end)}`).join("\n"),
      "parts").dataset.field = "partitions";
    return row;
  }));
}

async function refreshVersions() {
  if (versionsAsked) return;
  versionsAsked = true;
  try {
    const response = await fetch("/admin/views", {cache: "no-store"});
    if (!response.ok) throw new Error(`GET /admin/views answered ${response.status}`);
    const answer = await response.json();
    renderVersions(answer.versions);
    $("versions-status").textContent = `(from Kafka, updated ${utcTime(new Date())})`;
    $("versions-status").classList.remove("unknown", "bad");
  } catch (err) {
    const shown = $("versions").querySelector("tbody").children.length;
    $("versions-status").textContent = `${err.message}` + (shown ? "; showing the last answer" : "");
    $("versions-status").classList.add("bad");
  } finally {
    versionsAsked = false;
  }
}

function render(cluster) {
  renderTotals(cluster);
  renderWorkers(cluster);
  renderViews(cluster);
  renderLetters(cluster);
  renderLookupViews(cluster);
  const silent = cluster.workers.filter((w) => !w.answered).length;
  const when = utcTime(new Date(cluster.at * 1000));
  $("status").textContent = `${cluster.workers.length} workers` +
    (silent ? `, ${silent} not answering` : "") + ` · updated ${when} · via ${cluster.asked}`;
}

async function refresh() {
  if (round++ % VERSIONS_EVERY === 0) refreshVersions();
  try {
    const response = await fetch("/cluster", {cache: "no-store"});
    if (!response.ok) throw new Error(`GET /cluster answered ${response.status}`);
    const cluster = await response.json();
    render(cluster);
    previous = cluster;
    delay = EVERY_MS;
  } catch (err) {
    delay = Math.min(delay * 2, MOST_MS);
    $("status").textContent = `${err.message}; trying again in ${Math.round(delay / 1000)} s`;
  }
  setTimeout(refresh, delay);
}

function stopFollowing() {
  if (follow) follow.close();
  follow = null;
  $("lookup-stop").disabled = true;
}

async function lookup(event) {
  event.preventDefault();
  stopFollowing();
  const view = $("lookup-view").value;
  const key = $("lookup-key").value.trim();
  const path = `/views/${encodeURIComponent(view)}/${encodeURIComponent(key)}`;
  $("lookup-updates").replaceChildren();
  $("lookup-row").textContent = "";
  $("lookup-status").textContent = `looking up ${view}/${key}…`;
  try {
    const response = await fetch(path, {cache: "no-store"});
    const body = await response.json();
    $("lookup-row").textContent = JSON.stringify(response.ok ? body.data : body, null, 2);
    $("lookup-status").textContent = response.ok ? `${view}/${key}` : `${response.status}: ${body.error}`;
  } catch (err) {
    $("lookup-status").textContent = `lookup failed: ${err.message}`;
    return;
  }
  const select = $("lookup-view");
  if (select.selectedOptions[0].textContent.includes("no live updates")) return;
  follow = new EventSource(`${path}/events`);
  $("lookup-stop").disabled = false;
  follow.addEventListener("open", () => {
    $("lookup-status").textContent = `${view}/${key}: following live updates`;
  });
  follow.addEventListener("row", (message) => {
    const row = JSON.parse(message.data);
    $("lookup-row").textContent = JSON.stringify(row.data, null, 2);
    const item = document.createElement("li");
    item.textContent = `${utcTime(new Date())}  update ${message.lastEventId}` +
      (known(row.data.version) ? `  version ${row.data.version}` : "") +
      (row.data.status ? `  ${row.data.status}` : "");
    $("lookup-updates").prepend(item);
  });
  follow.addEventListener("error", () => {
    $("lookup-status").textContent = `${view}/${key}: live updates interrupted; reconnecting…`;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("lookup").addEventListener("submit", lookup);
  $("lookup-stop").addEventListener("click", () => {
    stopFollowing();
    $("lookup-status").textContent = "stopped following";
  });
  refresh();
});
