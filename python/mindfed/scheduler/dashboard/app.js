// The mindfed scheduler's dashboard. Plain browser JavaScript, no libraries and no build step.
//
// It polls /dashboard/api/overview (the cluster state as /state reads it, the iteration's live round counts and the
// metrics of finished iterations) and acts through the management routes themselves, so it is authenticated exactly
// as the REST plane: when the scheduler wants the operator's token the page asks for it, keeps it in this tab's
// sessionStorage only and sends it as `Authorization: Bearer`. Every text from the server goes in with textContent,
// never as HTML.
"use strict";

const OVERVIEW = "/dashboard/api/overview";
const POLL_MS = 1000;
const REQUEST_TIMEOUT_MS = 10000;
const TOKEN_KEY = "mindfed.operatorToken";
const SVG = "http://www.w3.org/2000/svg";
const CHART = { width: 400, height: 170, left: 46, right: 10, top: 10, bottom: 24 };

const view = { overview: null, hyperParams: null, polling: null };

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== "") node.textContent = text;
  return node;
}

function svgEl(tag, attrs = {}, text = "") {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== "") node.textContent = text;
  return node;
}

// ---- the token -----------------------------------------------------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function showLogin(message) {
  $("login").hidden = false;
  $("login-message").textContent = message;
  $("token").focus();
}

function signIn(event) {
  event.preventDefault();
  const value = $("token").value.trim();
  if (!value) {
    showLogin("Enter the operator's token.");
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, value);
  $("token").value = "";
  $("login").hidden = true;
  $("sign-out").hidden = false;
  pollNow();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  $("sign-out").hidden = true;
  pollNow();
}

// ---- requests ------------------------------------------------------------------------------------------------------

// One request to the scheduler: {status, body} (body: the parsed JSON, or null). A 401 opens the sign-in form.
async function call(path, { method = "GET", body = undefined } = {}) {
  const headers = {};
  if (token()) headers.Authorization = "Bearer " + token();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
  try {
    const resp = await fetch(path, { method, headers, body, cache: "no-store", signal: abort.signal });
    let parsed = null;
    try {
      parsed = await resp.json();
    } catch (_) {
      parsed = null;
    }
    if (resp.status === 401) {
      if (token()) {
        sessionStorage.removeItem(TOKEN_KEY);
        $("sign-out").hidden = true;
        showLogin("The scheduler refused that token; enter the operator's token again.");
      } else {
        showLogin("This scheduler wants the operator's token (MINDFED_OPERATOR_TOKEN). It is kept in this tab " +
                  "only and sent as Authorization: Bearer.");
      }
    }
    return { status: resp.status, body: parsed };
  } finally {
    clearTimeout(timer);
  }
}

function errorText(reply) {
  if (reply.body && typeof reply.body.error_message === "string") return reply.body.error_message;
  return "HTTP " + reply.status;
}

// ---- polling -------------------------------------------------------------------------------------------------------

async function poll() {
  view.polling = null;
  try {
    const reply = await call(OVERVIEW);
    if (reply.status === 200 && reply.body) {
      view.overview = reply.body;
      render(reply.body);
      $("connection").textContent = "updated " + new Date().toLocaleTimeString();
    } else if (reply.status !== 401) {
      unreachable(errorText(reply));
    } else {
      unreachable("sign in to see the cluster");
    }
  } catch (err) {
    unreachable("scheduler unreachable (" + (err && err.name === "AbortError" ? "timeout" : err) + ")");
  }
  view.polling = setTimeout(poll, POLL_MS);
}

function pollNow() {
  if (view.polling !== null) {
    clearTimeout(view.polling);
    poll();
  }
}

function unreachable(why) {
  $("connection").textContent = why;
  const badge = $("cluster-state");
  badge.textContent = "unknown";
  badge.className = "badge unreachable";
}

// ---- rendering -----------------------------------------------------------------------------------------------------

function render(data) {
  $("fl-name").textContent = data.fl_name || "";
  document.title = "mindfed " + (data.fl_name || "") + " – dashboard";
  const badge = $("cluster-state");
  badge.textContent = data.cluster_state || (data.instance ? data.running_state : "no instance yet");
  badge.className = "badge " + (data.cluster_state || "");
  $("instance").textContent = data.instance || "–";
  renderIteration(data.iteration);
  renderNodes(data.nodes || []);
  renderActions(data);
  renderHistory(data.history || []);
}

function renderIteration(it) {
  $("iteration").textContent = it ? String(it.number) : "–";
  $("iteration-of").textContent = it && it.of !== null ? String(it.of) : "–";
  const rounds = $("rounds");
  rounds.replaceChildren();
  for (const round of (it ? it.rounds : [])) {
    const box = el("div", { class: "round", "data-round": round.name });
    const label = el("div", { class: "label" });
    label.append(el("span", {}, round.name), el("span", { class: "count" },
      round.count + (round.threshold !== null ? " / " + round.threshold : "")));
    const bar = el("div", { class: "bar" });
    const fill = el("div");
    const share = round.threshold ? Math.min(1, round.count / round.threshold) : 0;
    fill.style.width = (share * 100).toFixed(1) + "%";
    bar.append(fill);
    box.append(label, bar);
    rounds.append(box);
  }
  const body = $("visits").tBodies[0];
  body.replaceChildren();
  for (const v of (it ? it.visits : [])) {
    const row = el("tr");
    row.append(el("td", {}, v.name), el("td", { class: "num" }, String(v.total)),
      el("td", { class: "num" }, String(v.accepted)));
    body.append(row);
  }
  let last = "";
  if (it && it.number > 1) {
    last = "previous iteration: " + (it.last_success ? "success" : "failed") +
      (it.last_result ? " (" + it.last_result + ")" : "");
  }
  $("last-result").textContent = last;
}

function renderNodes(nodes) {
  const body = $("nodes").tBodies[0];
  body.replaceChildren();
  for (const node of nodes) {
    const row = el("tr", { "data-role": node.role, "data-node-id": node.node_id });
    row.append(el("td", {}, node.role), el("td", { class: "id" }, node.node_id),
      el("td", { class: "id" }, node.tcp_address),
      el("td", { class: "num" }, node.role === "SERVER" ? String(node.updates) : ""));
    body.append(row);
  }
  const servers = nodes.filter((n) => n.role === "SERVER").length;
  $("server-count").textContent = "(" + servers + " server" + (servers === 1 ? "" : "s") + ")";
}

function renderActions(data) {
  $("enable").disabled = data.running_state !== "disabled";
  $("disable").disabled = data.running_state !== "running";
  $("new-instance").disabled = !data.instance;
}

function renderHistory(points) {
  $("history-count").textContent = points.length ? "(latest " + points.length + ")" : "";
  // an iteration without updates has no loss or accuracy (metrics_file writes 0 for it): it is not drawn as one
  const measured = (value) => (p) => (p.participants ? value(p) : null);
  chart($("chart-accuracy"), points, measured((p) => p.accuracy), { digits: 3 });
  chart($("chart-loss"), points, measured((p) => p.loss), { digits: 3 });
  chart($("chart-participants"), points, (p) => p.participants, { digits: 0, bars: true });
  chart($("chart-duration"), points, (p) => (p.duration_ms === null ? null : p.duration_ms / 1000),
    { digits: 1, bars: true });
  const body = $("history").tBodies[0];
  body.replaceChildren();
  for (const p of points.slice(-10).reverse()) {
    const row = el("tr", { class: p.result === "success" ? "ok" : "fail" });
    const cells = [p.instance, p.iteration, p.result, p.participants ? fixed(p.accuracy, 3) : "",
      p.participants ? fixed(p.loss, 3) : "", p.participants,
      p.duration_ms === null ? "" : fixed(p.duration_ms / 1000, 1), p.end_time];
    cells.forEach((value, i) => row.append(el("td", i >= 3 && i <= 6 ? { class: "num" } : {},
      value === null || value === undefined ? "" : String(value))));
    if (p.reason) row.title = p.reason;
    body.append(row);
  }
}

function fixed(value, digits) {
  return value === null || value === undefined ? "" : Number(value).toFixed(digits);
}

// A small SVG chart: one mark per finished iteration (x: its place in the history; failed ones in red, on the x axis
// when they have no value; the start of a new instance a dashed line), the y axis from the values' range.
function chart(svg, points, valueOf, { digits, bars = false }) {
  svg.replaceChildren();
  const values = points.map(valueOf);
  const known = values.filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  const { width, height, left, right, top, bottom } = CHART;
  if (!known.length) {
    svg.append(svgEl("text", { class: "empty", x: width / 2, y: height / 2, "text-anchor": "middle" },
      "no finished iteration yet"));
    return;
  }
  let lo = Math.min(...known, bars ? 0 : Infinity);
  let hi = Math.max(...known);
  if (hi === lo) {
    hi = lo + (lo === 0 ? 1 : Math.abs(lo) * 0.1);
    if (!bars) lo -= (hi - lo);
  }
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const step = plotW / Math.max(points.length, 1);
  const x = (i) => left + step * (i + 0.5);
  const y = (v) => top + plotH * (1 - (v - lo) / (hi - lo));
  svg.append(svgEl("line", { class: "axis", x1: left, y1: top, x2: left, y2: top + plotH }));
  svg.append(svgEl("line", { class: "axis", x1: left, y1: top + plotH, x2: width - right, y2: top + plotH }));
  for (const v of [lo, (lo + hi) / 2, hi]) {
    svg.append(svgEl("text", { class: "tick", x: left - 4, y: y(v) + 3, "text-anchor": "end" }, v.toFixed(digits)));
  }
  const first = points[0];
  const lastPoint = points[points.length - 1];
  svg.append(svgEl("text", { class: "tick", x: left, y: height - 6 }, "it " + first.iteration));
  svg.append(svgEl("text", { class: "tick", x: width - right, y: height - 6, "text-anchor": "end" },
    "it " + lastPoint.iteration));
  points.forEach((p, i) => {
    if (i > 0 && p.instance !== points[i - 1].instance) {
      const edge = left + step * i;
      svg.append(svgEl("line", { class: "instance-edge", x1: edge, y1: top, x2: edge, y2: top + plotH }));
    }
  });
  let path = "";
  points.forEach((p, i) => {
    const v = values[i];
    const cls = p.result === "success" ? "" : " fail";
    if (v === null || v === undefined || !Number.isFinite(v)) {
      if (cls) {  // a failed iteration without a value: a red mark on the x axis
        const mark = svgEl("rect", { class: "fail-mark", x: x(i) - 3, y: top + plotH - 3, width: 6, height: 6 });
        mark.append(svgEl("title", {}, "iteration " + p.iteration + " (" + p.instance + "): failed" +
          (p.reason ? ", " + p.reason : "")));
        svg.append(mark);
      }
      return;
    }
    let mark;
    if (bars) {
      const barW = Math.max(1, step * 0.7);
      mark = svgEl("rect", { class: "bar-rect" + cls, x: x(i) - barW / 2, y: y(v), width: barW,
        height: Math.max(0, top + plotH - y(v)) });
    } else {
      path += (path ? " L " : "M ") + x(i).toFixed(1) + " " + y(v).toFixed(1);
      mark = svgEl("circle", { class: "point" + cls, cx: x(i), cy: y(v), r: points.length > 60 ? 1.5 : 3 });
    }
    mark.append(svgEl("title", {}, "iteration " + p.iteration + " (" + p.instance + "): " + v.toFixed(digits) +
      ", " + p.result));
    svg.append(mark);
  });
  if (path) svg.insertBefore(svgEl("path", { class: "series", d: path }), svg.querySelector(".point"));
}

// ---- actions -------------------------------------------------------------------------------------------------------

function actionMessage(text, ok) {
  const box = $("action-message");
  box.textContent = text;
  box.className = ok ? "ok" : "bad";
}

async function act(path, body, question) {
  if (question && !window.confirm(question)) return;
  try {
    const reply = await call(path, { method: "POST", body });
    if (reply.status === 200 && reply.body && reply.body.code === "0") {
      actionMessage(reply.body.message, true);
    } else if (reply.status === 401) {
      actionMessage("Sign in with the operator's token, then try again.", false);
    } else {
      actionMessage(errorText(reply), false);
    }
  } catch (err) {
    actionMessage("The scheduler did not answer: " + err, false);
  }
  pollNow();
}

// The new-instance form: one field per hyper-parameter /newInstance accepts (read from the scheduler's OpenAPI
// document, the one list of them), filled with the instance's values from /queryInstance.
async function loadHyperParams() {
  const box = $("hyper-params");
  try {
    const [doc, query] = await Promise.all([call("/openapi.json"), call("/queryInstance", { method: "POST" })]);
    if (query.status !== 200 || !query.body || query.body.code !== "0") {
      box.replaceChildren(el("p", { class: "muted" }, "Cannot read the hyper-parameters: " + errorText(query)));
      return;
    }
    const schema = doc.body.components.schemas.HyperParamOverrides.properties;
    view.hyperParams = { schema, current: query.body.result };
    box.replaceChildren();
    for (const name of Object.keys(schema).sort()) {
      const input = el("input", { id: "hp-" + name, name, type: "number",
        step: schema[name].type === "integer" ? "1" : "any" });
      const current = query.body.result[name];
      input.value = current === undefined ? "" : String(current);
      input.dataset.current = input.value;
      input.addEventListener("input", () => input.classList.toggle("changed", input.value !== input.dataset.current));
      box.append(el("label", { for: input.id }, name), input);
    }
  } catch (err) {
    box.replaceChildren(el("p", { class: "muted" }, "Cannot read the hyper-parameters: " + err));
  }
}

function newInstance(event) {
  event.preventDefault();
  if (!view.hyperParams) {
    loadHyperParams();
    return;
  }
  const overrides = {};
  for (const input of $("hyper-params").querySelectorAll("input")) {
    if (input.value === input.dataset.current || input.value === "") continue;
    const value = Number(input.value);
    if (view.hyperParams.schema[input.name].type === "integer" && !Number.isInteger(value)) {
      actionMessage(input.name + " must be a whole number", false);
      return;
    }
    overrides[input.name] = value;
  }
  const changed = Object.keys(overrides);
  const question = "Start a new instance" + (changed.length ? " with " + changed.map((k) => k + "=" +
    overrides[k]).join(", ") : " with the same hyper-parameters") + "? Iterations restart at 1.";
  act("/newInstance", JSON.stringify(overrides), question).then(() => {
    view.hyperParams = null;
    loadHyperParams();
  });
}

// ---- start ---------------------------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("sign-out").hidden = !token();
  $("enable").addEventListener("click", () => act("/enableFLS"));
  $("disable").addEventListener("click", () => act("/disableFLS", undefined,
    "Disable the instance? The iteration under way fails and devices are turned away until it is enabled."));
  $("new-instance-form").addEventListener("submit", newInstance);
  $("new-instance-panel").addEventListener("toggle", () => {
    if ($("new-instance-panel").open) loadHyperParams();
  });
  poll();
});
