"use strict";
// The Troupe dashboard: one page, hash routes, one event stream per view
// (server-sent events; the server sends a view again only when it changed).

const token = new URLSearchParams(location.search).get("token");
const ROWS_SHOWN = 500;
let stream = null;
const table = { sort: "pid", asc: true, filter: "" };

function withToken(path) {
  if (!token) return path;
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function show(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes);
}

function live(on) {
  document.getElementById("live").className = on ? "on" : "";
  document.getElementById("live").textContent = on ? "● live" : "○";
}

// Opens the event stream of `view`; `render` gets each new value.
function follow(view, query, render) {
  if (stream) stream.close();
  const q = new URLSearchParams(query || {}).toString();
  stream = new EventSource(withToken("api/events/" + view + (q ? "?" + q : "")));
  stream.onopen = () => live(true);
  stream.onerror = () => live(false);
  const onView = (ev) => render(JSON.parse(ev.data), null);
  stream.addEventListener("message", onView);
  stream.addEventListener("view", onView);
  stream.addEventListener("failure", (ev) => render(null, JSON.parse(ev.data)));
}

async function kill(pid) {
  const r = await fetch(withToken("api/processes/" + encodeURIComponent(pid) + "/kill"), { method: "POST" });
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    alert("kill failed: " + ((body.error && body.error.message) || r.status));
  }
}

function killButton(pid) {
  if (!token) return null;
  return el("button", { class: "kill", "data-pid": pid, onclick: () => kill(pid) }, "kill");
}

function pidLink(pid) {
  return el("a", { href: "#/process/" + encodeURIComponent(pid) }, pid);
}

function waitingText(w) {
  if (!w) return "";
  if (w.on === "receive") return "receive " + (w.topic || "(any)");
  if (w.on === "sleep") return "sleep until " + new Date(w.until_ms).toLocaleTimeString();
  return w.name;
}

function bytes(n) {
  if (n === null || n === undefined) return "";
  if (n < 1024) return n + " B";
  if (n < 1 << 20) return (n / 1024).toFixed(1) + " KiB";
  return (n / (1 << 20)).toFixed(1) + " MiB";
}

const COLUMNS = [
  ["pid", "pid", (p) => pidNumber(p.pid)],
  ["name", "name", (p) => p.name || ""],
  ["script", "script", (p) => p.script],
  ["kind", "kind", (p) => p.kind],
  ["status", "status", (p) => p.status],
  ["waiting", "waiting on", (p) => waitingText(p.waiting)],
  ["mailbox", "mailbox", (p) => p.mailbox.len],
  ["memory", "memory", (p) => p.memory || 0],
  ["instructions", "instructions", (p) => p.instructions || 0],
];

function pidNumber(pid) {
  const m = /<(\d+)\.(\d+)>/.exec(pid);
  return m ? Number(m[1]) * 1e12 + Number(m[2]) : 0;
}

function processesPage() {
  const search = el("input", { type: "search", id: "filter", placeholder: "filter: pid, name, script, status, topic…", value: table.filter });
  const count = el("span", { id: "count", class: "muted" });
  const head = el("tr", {}, COLUMNS.map(([key, title]) =>
    el("th", {
      "data-key": key,
      class: table.sort === key ? "sorted" + (table.asc ? " asc" : "") : null,
      onclick: () => {
        table.asc = table.sort === key ? !table.asc : true;
        table.sort = key;
        processesPage();
      },
    }, title)), el("th", {}, ""));
  const body = el("tbody");
  show(el("h1", {}, "Processes"), el("div", { class: "bar" }, search, count),
    el("table", { id: "processes" }, el("thead", {}, head), body));
  let latest = [];
  const draw = () => {
    const f = table.filter.toLowerCase();
    const col = COLUMNS.find(([k]) => k === table.sort) || COLUMNS[0];
    const rows = latest.filter((p) => !f || [p.pid, p.name, p.script, p.status, p.kind, waitingText(p.waiting)]
      .some((v) => v && String(v).toLowerCase().includes(f)));
    rows.sort((a, b) => {
      const x = col[2](a), y = col[2](b);
      const c = x < y ? -1 : x > y ? 1 : 0;
      return table.asc ? c : -c;
    });
    count.textContent = rows.length > ROWS_SHOWN
      ? `showing ${ROWS_SHOWN} of ${rows.length} (${latest.length} live)`
      : `${rows.length} of ${latest.length} live`;
    body.replaceChildren(...rows.slice(0, ROWS_SHOWN).map((p) => el("tr", { "data-pid": p.pid },
      el("td", {}, pidLink(p.pid)),
      el("td", {}, p.name || ""),
      el("td", {}, el("code", {}, p.script)),
      el("td", {}, p.kind),
      el("td", {}, p.status),
      el("td", {}, waitingText(p.waiting)),
      el("td", { class: "num" }, `${p.mailbox.len}/${p.mailbox.capacity}`),
      el("td", { class: "num" }, bytes(p.memory)),
      el("td", { class: "num" }, p.instructions === null ? "" : p.instructions),
      el("td", {}, killButton(p.pid)))));
  };
  search.addEventListener("input", () => { table.filter = search.value; draw(); });
  follow("processes", null, (list, err) => {
    if (err) return;
    latest = list;
    draw();
  });
}

function pidList(pids) {
  if (!pids.length) return el("span", { class: "muted" }, "none");
  return el("span", {}, pids.flatMap((p, i) => (i ? [", ", pidLink(p)] : [pidLink(p)])));
}

function processPage(pid) {
  show(el("h1", {}, "Process " + pid), el("p", {}, "Loading…"));
  follow("process", { pid }, (p, err) => {
    if (err) {
      show(el("h1", {}, "Process " + pid), el("p", { class: "error", id: "gone" }, err.message));
      return;
    }
    const field = (k, v) => [el("dt", {}, k), el("dd", {}, v)];
    show(el("h1", {}, "Process " + p.pid, " ", killButton(p.pid)),
      el("dl", { id: "process" },
        field("name", p.name || ""),
        field("script", el("code", {}, p.script)),
        field("engine", p.engine + " (" + p.kind + ")"),
        field("workflow", p.workflow ? el("a", { href: "#/workflow/" + encodeURIComponent(p.workflow) }, p.workflow) : ""),
        field("status", p.status),
        field("waiting on", waitingText(p.waiting)),
        field("mailbox", `${p.mailbox.len} of ${p.mailbox.capacity} messages, ${bytes(p.mailbox.bytes)}, ${p.mailbox.blocked_senders} senders waiting`),
        field("queued topics", p.topics.length ? el("code", { id: "topics" }, p.topics.join(", ")) : el("span", { class: "muted" }, "none")),
        field("memory", bytes(p.memory)),
        field("instructions", p.instructions === null ? "not counted" : p.instructions),
        field("parent", p.parent ? pidLink(p.parent) : "the host"),
        field("links", pidList(p.links)),
        field("monitors", pidList(p.monitors)),
        field("monitored by", pidList(p.monitored_by)),
        field("traps exits", p.trap_exits ? "yes" : "no"),
        field("started", new Date(p.started_ms).toLocaleString())));
  });
}

function treeNode(t) {
  return el("li", { class: "supervisor", "data-pid": t.pid },
    "supervisor ", pidLink(t.pid), t.name ? " (" + t.name + ")" : "",
    el("ul", { class: "tree" }, t.children.map((c) => el("li", { class: "child" },
      el("strong", {}, c.id), " ", c.pid ? pidLink(c.pid) : el("span", { class: "muted" }, "not running"),
      c.supervisors.length ? el("ul", { class: "tree" }, c.supervisors.map(treeNode)) : null))));
}

function supervisorsPage() {
  show(el("h1", {}, "Supervisors"), el("p", {}, "Loading…"));
  follow("supervisors", null, (forest) => {
    show(el("h1", {}, "Supervisors"), forest.length
      ? el("ul", { class: "tree", id: "supervisors" }, forest.map(treeNode))
      : el("p", { class: "muted" }, "No supervisors are running."));
  });
}

function result(r) {
  if (!r) return "";
  return r.error ? el("span", { class: "error" }, r.error.kind + ": " + r.error.message) : el("code", {}, JSON.stringify(r.ok));
}

function workflowsPage() {
  show(el("h1", {}, "Workflows"), el("p", {}, "Loading…"));
  follow("workflows", null, (list, err) => {
    if (err) {
      show(el("h1", {}, "Workflows"), el("p", { class: "error" }, err.message));
      return;
    }
    show(el("h1", {}, "Workflows"), el("table", { id: "workflows" },
      el("thead", {}, el("tr", {}, ["id", "status", "run", "steps", "script", "started", "result"].map((h) => el("th", {}, h)))),
      el("tbody", {}, list.map((w) => el("tr", { "data-id": w.id },
        el("td", {}, el("a", { href: "#/workflow/" + encodeURIComponent(w.id) }, w.id)),
        el("td", {}, w.status || el("span", { class: "error" }, w.unreadable)),
        el("td", { class: "num" }, w.run || ""),
        el("td", { class: "num" }, w.steps),
        el("td", {}, el("code", {}, w.script || "")),
        el("td", {}, w.started_ms ? new Date(w.started_ms).toLocaleString() : ""),
        el("td", {}, result(w.result)))))));
  });
}

function workflowPage(id) {
  show(el("h1", {}, "Workflow " + id), el("p", {}, "Loading…"));
  follow("workflow", { id }, (w, err) => {
    if (err) {
      show(el("h1", {}, "Workflow " + id), el("p", { class: "error" }, err.message));
      return;
    }
    const t0 = w.started_ms;
    show(el("h1", {}, "Workflow " + w.id + " — " + w.status),
      el("p", {}, "script ", el("code", {}, w.script), ", run ", w.run, w.past_runs.length ? ` (after ${w.past_runs.length} continued)` : "",
        ", args ", el("code", {}, JSON.stringify(w.args)), w.result ? [", result ", result(w.result)] : ""),
      el("ol", { id: "timeline" }, w.history.map((s) => el("li", { class: "step" + (s.result.error ? " failed" : ""), "data-step": s.step },
        el("span", { class: "muted" }, `#${s.step} +${s.at_ms - t0} ms `),
        el("strong", { class: "command" }, s.command), " ",
        el("code", {}, JSON.stringify(s.args)), " → ", result(s.result)))));
  });
}

function route() {
  const [, page, arg] = (location.hash || "#/processes").split("/").map(decodeURIComponent);
  // The tab of the page shown: one process or workflow is under its list's.
  const tab = { process: "processes", supervisors: "supervisors", workflows: "workflows", workflow: "workflows" }[page] || "processes";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("current", a.id === "nav-" + tab);
  if (page === "process" && arg) processPage(arg);
  else if (page === "supervisors") supervisorsPage();
  else if (page === "workflows") workflowsPage();
  else if (page === "workflow" && arg) workflowPage(arg);
  else processesPage();
}

document.getElementById("nav-metrics").href = withToken("metrics");
window.addEventListener("hashchange", route);
route();
