// hitship console: the integrations list and the setup dialog over the admin
// API (/v1/). Plain script, no build step; see ui/doc.go for what it
// guarantees. The token lives in sessionStorage and goes in the
// Authorization header only.
"use strict";

const TOKEN_KEY = "hitship.adminToken";
const REFRESH_MS = 3000;

const $ = (id) => document.getElementById(id);

// ---- API ----------------------------------------------------------------

class SignedOut extends Error {}

async function api(method, path, body, headers) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    signOut("");
    throw new SignedOut();
  }
  const h = Object.assign({ Authorization: "Bearer " + token, Accept: "application/json" }, headers || {});
  const init = { method, headers: h, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" };
  if (body !== undefined) {
    h["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (resp.status === 401) {
    signOut("The server refused the token (wrong, revoked or expired). Sign in again.");
    throw new SignedOut();
  }
  let data = null;
  try {
    data = await resp.json();
  } catch (_) {
    data = null;
  }
  return { status: resp.status, headers: resp.headers, data };
}

// apiMessage is the plain-words message of an error answer.
function apiMessage(r) {
  if (r.data && r.data.message) return r.data.message;
  return "The server answered " + r.status + ".";
}

// ---- sign in / out ------------------------------------------------------

let refreshTimer = 0;
let items = [];
let lastSeen = ""; // the list as last read, to re-render only on a change

function signOut(why) {
  sessionStorage.removeItem(TOKEN_KEY);
  items = [];
  lastSeen = "";
  $("rows").replaceChildren();
  clearInterval(refreshTimer);
  refreshTimer = 0;
  for (const d of document.querySelectorAll("dialog[open]")) d.close();
  $("console").hidden = true;
  $("signout").hidden = true;
  $("login").hidden = false;
  $("login-why").textContent = why || "";
  $("token").value = "";
  $("token").focus();
}

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  if ((await load()) === SIGNED_OUT) return;
  $("login").hidden = true;
  $("console").hidden = false;
  $("signout").hidden = false;
  $("add").focus();
  startRefresh();
}

function startRefresh() {
  clearInterval(refreshTimer);
  refreshTimer = setInterval(() => {
    if (!document.hidden) load().catch(() => {});
  }, REFRESH_MS);
}

// ---- the list -----------------------------------------------------------

const SIGNED_OUT = "signed out";

// load reads the list and shows it; a failure other than a refused token is
// shown above the list, which keeps what it showed.
async function load() {
  let r;
  try {
    r = await api("GET", "/v1/integrations");
  } catch (e) {
    if (e instanceof SignedOut) return SIGNED_OUT;
    showListError("The server cannot be reached: " + e.message);
    return;
  }
  if (r.status !== 200) {
    showListError(apiMessage(r));
    return;
  }
  showListError("");
  items = (r.data && r.data.integrations) || [];
  // Unchanged: only the relative times move (rows rebuilt under the
  // pointer or a screen reader's cursor for nothing would be a nuisance).
  const seen = JSON.stringify(items);
  if (seen === lastSeen) {
    for (const t of $("rows").querySelectorAll("time[datetime]")) t.textContent = ago(t.dateTime);
    return;
  }
  lastSeen = seen;
  render();
}

function showListError(msg) {
  $("list-error").textContent = msg;
  $("list-error").hidden = !msg;
}

function failing(it) {
  const e = it.last_error;
  if (!e) return false;
  return !it.last_success_at || new Date(e.at) > new Date(it.last_success_at);
}

function matches(it) {
  const st = $("state-filter").value;
  if (st === "failing" ? !failing(it) : st && it.state !== st) return false;
  const q = $("search").value.trim().toLowerCase();
  if (!q) return true;
  return it.name.toLowerCase().includes(q) || String(it.client_id).includes(q);
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c);
  }
  return e;
}

function ago(iso) {
  const t = new Date(iso);
  const s = Math.round((Date.now() - t.getTime()) / 1000);
  if (s < 45) return "just now";
  if (s < 90) return "1 min ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 36 * 3600) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " days ago";
}

function timeEl(iso) {
  const t = new Date(iso);
  return el("time", { datetime: t.toISOString(), title: t.toLocaleString() }, ago(iso));
}

const STATE_WORDS = { enabled: "Enabled", disabled: "Disabled", "auto-disabled": "Auto-disabled" };
const CLASS_WORDS = { customer: "customer's side", provider: "S3's side", hitship: "hitship's side" };

function stateCell(it) {
  const td = el("td", { class: "state" }, el("span", { class: "badge " + it.state, text: STATE_WORDS[it.state] || it.state }));
  if (it.state !== "enabled") {
    if (it.reason) td.append(el("span", { class: "small", text: it.reason }));
    if (it.since) td.append(el("span", { class: "small" }, "since ", timeEl(it.since)));
    if (it.by) td.append(el("span", { class: "small", text: "by " + it.by }));
  }
  if (!it.config_enabled) td.append(el("span", { class: "small", text: "off in the config file" }));
  return td;
}

function errorCell(it) {
  const e = it.last_error;
  if (!e) return el("td", { class: "err-cell" }, el("span", { class: "small", text: "none" }));
  const stale = !failing(it);
  return el(
    "td",
    { class: "err-cell" },
    el("span", { class: "cls " + e.class, text: CLASS_WORDS[e.class] || e.class }),
    el("span", { text: e.message }),
    e.fix ? el("span", { class: "small", text: "Fix: " + e.fix }) : null,
    el("span", { class: "small" }, timeEl(e.at), stale ? " · succeeded since" : "")
  );
}

function ratioCell(it) {
  const l = it.ledger_12h;
  if (!l || !l.attempts) return el("td", { class: "num" }, el("span", { class: "small", text: "no attempts" }));
  const ok = ((l.attempts - l.failures) * 100) / l.attempts;
  return el(
    "td",
    { class: "num" },
    Math.floor(ok) + "%",
    el("span", { class: "small", text: l.attempts - l.failures + " of " + l.attempts + " attempts" })
  );
}

function deliveredCell(it) {
  const d = it.delivered_1h || { objects: 0, hits: 0 };
  return el(
    "td",
    { class: "num delivered" },
    el("span", { class: "objects", text: d.objects + (d.objects === 1 ? " object" : " objects") }),
    el("span", { class: "small hits", text: d.hits.toLocaleString("en") + (d.hits === 1 ? " hit" : " hits") })
  );
}

function actionButton(action, it, label, cls) {
  return el("button", {
    type: "button",
    class: cls,
    "data-action": action,
    "data-name": it.name,
    "aria-label": label + " " + it.name,
    text: label,
  });
}

function row(it) {
  // A Security Lake source shows its partitions (the API's location); the
  // dialog edits S3 integrations only, so it gets no Edit button.
  const lake = it.type === "security_lake";
  const dest = it.location || "s3://" + it.bucket + "/" + (it.prefix || "");
  const auth = it.auth && it.auth.method === "role" ? "role " + it.auth.role_arn : it.auth && it.auth.method === "access_key" ? "key " + it.auth.access_key_id : "";
  const api = it.source === "api";
  return el(
    "tr",
    { "data-name": it.name, "data-state": it.state },
    el("td", { class: "name" }, it.name, el("span", { class: "small", text: api ? "added here" : "config file" })),
    el("td", { class: "client", text: String(it.client_id) }),
    el("td", { class: "dest" }, el("code", { text: dest }), el("span", { class: "small", text: (lake ? "Security Lake source · " : "") + it.region + (auth ? " · " + auth : "") })),
    el("td", { class: "format" }, it.format, it.compression && it.compression !== "none" ? el("span", { class: "small", text: it.compression }) : null),
    stateCell(it),
    el("td", { class: "success" }, it.last_success_at ? timeEl(it.last_success_at) : el("span", { class: "small", text: "never" })),
    errorCell(it),
    ratioCell(it),
    deliveredCell(it),
    el(
      "td",
      { class: "actions" },
      api && !lake ? actionButton("edit", it, "Edit") : null,
      it.state === "enabled" ? actionButton("disable", it, "Disable") : actionButton("enable", it, it.state === "auto-disabled" ? "Re-enable" : "Enable"),
      actionButton("history", it, "History"),
      api ? actionButton("delete", it, "Delete", "danger") : null
    )
  );
}

function render() {
  // Keep the focus on the same control across a refresh.
  const f = document.activeElement;
  const keep = f && f.dataset && f.dataset.action ? [f.dataset.action, f.dataset.name] : null;
  const shown = items.filter(matches);
  $("rows").replaceChildren(...shown.map(row));
  $("empty").hidden = shown.length > 0;
  $("count").textContent = shown.length === items.length ? items.length + " integrations" : shown.length + " of " + items.length + " integrations";
  if (keep) {
    const again = [...$("rows").querySelectorAll("button[data-action]")].find((b) => b.dataset.action === keep[0] && b.dataset.name === keep[1]);
    if (again) again.focus();
  }
}

function byName(name) {
  return items.find((it) => it.name === name);
}

// ---- dialogs: modal, focus kept inside, given back on close -------------

const openers = new Map();

function openDialog(d, focus) {
  openers.set(d, document.activeElement);
  d.showModal();
  (focus || d.querySelector("input, select, button")).focus();
}

function closeDialog(d) {
  if (d.open) d.close();
}

for (const d of document.querySelectorAll("dialog")) {
  d.addEventListener("close", () => {
    const o = openers.get(d);
    openers.delete(d);
    if (d.id === "editor") $("f-secret").value = "";
    if (o && o.isConnected) o.focus();
    else if (!$("console").hidden) $("add").focus();
  });
  d.addEventListener("keydown", (ev) => {
    if (ev.key !== "Tab") return;
    const f = [...d.querySelectorAll("button, input, select, textarea, summary, [tabindex]:not([tabindex='-1'])")].filter(
      (e) => !e.disabled && e.offsetParent !== null
    );
    if (f.length === 0) return;
    const first = f[0];
    const last = f[f.length - 1];
    if (ev.shiftKey && document.activeElement === first) {
      last.focus();
      ev.preventDefault();
    } else if (!ev.shiftKey && document.activeElement === last) {
      first.focus();
      ev.preventDefault();
    }
  });
}

// confirm asks a yes/no question; with reason it asks for one too. It
// resolves to the reason ("" without), or null when cancelled.
function confirmAction({ title, text, ok, danger, reason, run }) {
  const d = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = ok;
  $("confirm-ok").className = danger ? "primary danger" : "primary";
  $("reason-field").hidden = !reason;
  $("reason").value = "";
  $("confirm-error").hidden = true;
  $("confirm-ok").disabled = false;
  openDialog(d, reason ? $("reason") : $("confirm-cancel"));
  $("confirm-form").onsubmit = async (ev) => {
    ev.preventDefault();
    $("confirm-ok").disabled = true;
    try {
      const err = await run($("reason").value.trim());
      if (err) {
        $("confirm-error").textContent = err;
        $("confirm-error").hidden = false;
        $("confirm-ok").disabled = false;
        return;
      }
      closeDialog(d);
      await load();
    } catch (e) {
      if (!(e instanceof SignedOut)) {
        $("confirm-error").textContent = e.message;
        $("confirm-error").hidden = false;
        $("confirm-ok").disabled = false;
      }
    }
  };
}

$("confirm-cancel").addEventListener("click", () => closeDialog($("confirm")));
$("history-close").addEventListener("click", () => closeDialog($("history")));

const path = (name) => "/v1/integrations/" + encodeURIComponent(name);

const actions = {
  edit: (it) => openEditor(it),
  disable: (it) =>
    confirmAction({
      title: "Disable " + it.name + "?",
      text: "Its hits are skipped and counted, nothing is buffered, until it is enabled again. Every replica stops within seconds.",
      ok: "Disable",
      reason: true,
      run: async (reason) => {
        const r = await api("POST", path(it.name) + "/disable", reason ? { reason } : {});
        return r.status === 200 ? "" : apiMessage(r);
      },
    }),
  enable: (it) =>
    confirmAction({
      title: (it.state === "auto-disabled" ? "Re-enable " : "Enable ") + it.name + "?",
      text:
        "hitship delivers its hits again from the next record, resets its 12-hour health ledger and retries its parked objects now." +
        (it.state === "auto-disabled" && it.reason ? " It was switched off because: " + it.reason : ""),
      ok: it.state === "auto-disabled" ? "Re-enable" : "Enable",
      run: async () => {
        const r = await api("POST", path(it.name) + "/enable");
        return r.status === 200 ? "" : apiMessage(r);
      },
    }),
  delete: (it) =>
    confirmAction({
      title: "Delete " + it.name + "?",
      text: "Its configuration and everything hitship keeps for it (state, health, retries, parked objects) are removed on every replica. Objects already in the customer's bucket stay. This cannot be undone.",
      ok: "Delete",
      danger: true,
      run: async () => {
        const r = await api("DELETE", path(it.name));
        return r.status === 200 ? "" : apiMessage(r);
      },
    }),
  history: (it) => showHistory(it),
};

$("rows").addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-action]");
  if (!b) return;
  const it = byName(b.dataset.name);
  if (it) actions[b.dataset.action](it);
});

const EVENT_WORDS = {
  create_integration: "Added",
  update_integration: "Changed",
  delete_integration: "Deleted",
  integration_broken: "Auto-disabled",
};

async function showHistory(it) {
  const d = $("history");
  $("history-title").textContent = "History of " + it.name;
  $("history-list").replaceChildren();
  $("history-empty").hidden = true;
  $("history-error").hidden = true;
  openDialog(d, $("history-close"));
  const r = await api("GET", path(it.name) + "/events?limit=200");
  if (r.status !== 200) {
    $("history-error").textContent = apiMessage(r);
    $("history-error").hidden = false;
    return;
  }
  const evs = (r.data.events || []).slice().reverse(); // newest first
  $("history-empty").hidden = evs.length > 0;
  $("history-list").replaceChildren(
    ...evs.map((e) => {
      const what = e.type === "integration_state" ? STATE_WORDS[e.state] || e.state : EVENT_WORDS[e.type] || e.type;
      return el(
        "li",
        {},
        el("span", { class: "what", text: what }),
        " ",
        timeEl(e.at),
        e.by ? el("span", { class: "small", text: "by " + e.by }) : null,
        e.reason ? el("span", { class: "small", text: "why: " + e.reason }) : null
      );
    })
  );
}

// ---- the add / edit dialog ----------------------------------------------

let editing = null; // the integration being edited (null: adding)
let method = "role";

const FIELDS = {
  name: "f-name",
  client_id: "f-client",
  region: "f-region",
  bucket: "f-bucket",
  prefix: "f-prefix",
  format: "f-format",
  compression: "f-compression",
  "credentials.role_arn": "f-role",
  "credentials.access_key_id": "f-keyid",
  "credentials.secret_access_key": "f-secret",
  "credentials.secret_access_key_env": "f-secret",
};

function selectTab(which, focus) {
  method = which;
  const role = which === "role";
  $("tab-role").setAttribute("aria-selected", String(role));
  $("tab-key").setAttribute("aria-selected", String(!role));
  $("tab-role").tabIndex = role ? 0 : -1;
  $("tab-key").tabIndex = role ? -1 : 0;
  $("panel-role").hidden = !role;
  $("panel-key").hidden = role;
  if (focus) (role ? $("tab-role") : $("tab-key")).focus();
  if (role) onboarding();
}

$("tab-role").addEventListener("click", () => selectTab("role"));
$("tab-key").addEventListener("click", () => selectTab("key"));
$("auth-tabs").addEventListener("keydown", (ev) => {
  const keys = { ArrowLeft: 1, ArrowRight: 1, Home: 1, End: 1 };
  if (!keys[ev.key]) return;
  ev.preventDefault();
  if (ev.key === "Home") selectTab("role", true);
  else if (ev.key === "End") selectTab("key", true);
  else selectTab(method === "role" ? "key" : "role", true);
});

function clearProblems() {
  for (const id of new Set(Object.values(FIELDS))) {
    $(id).removeAttribute("aria-invalid");
    $(id + "-err").textContent = "";
  }
  $("editor-error").replaceChildren();
  $("editor-error").hidden = true;
}

// showProblems puts each problem beside its field; those of no field go on
// top. The first invalid field gets the focus.
function showProblems(problems) {
  clearProblems();
  const general = [];
  let first = null;
  for (const p of problems) {
    let id = FIELDS[p.field];
    if (!id && p.field && p.field.startsWith("credentials")) id = method === "role" ? "f-role" : "f-keyid";
    const text = p.problem + (p.fix ? " — " + p.fix : "");
    if (!id) {
      general.push(el("li", { text: (p.field ? p.field + ": " : "") + text }));
      continue;
    }
    const err = $(id + "-err");
    err.textContent = err.textContent ? err.textContent + " " + text : text;
    $(id).setAttribute("aria-invalid", "true");
    if (!first) first = $(id);
  }
  if (general.length) {
    $("editor-error").replaceChildren(el("span", { text: "The integration has problems:" }), el("ul", {}, ...general));
    $("editor-error").hidden = false;
  }
  if (first) {
    if (first.closest("[role=tabpanel]") && first.closest("[role=tabpanel]").hidden) selectTab(first.id === "f-role" ? "role" : "key");
    first.focus();
  }
}

function showError(msg) {
  clearProblems();
  $("editor-error").textContent = msg;
  $("editor-error").hidden = false;
}

function showAnswer(ans, intro) {
  const box = $("test-result");
  box.hidden = false;
  box.className = "result " + (ans.ok ? "ok" : "bad");
  $("test-message").textContent = (intro || "") + (ans.ok ? "✓ " : "✗ ") + ans.message;
  $("test-fix").textContent = ans.fix ? "Fix: " + ans.fix : "";
  $("test-fix").hidden = !ans.fix;
}

function request() {
  const v = (id) => $(id).value.trim();
  const client = Number(v("f-client"));
  const req = {
    name: v("f-name"),
    client_id: Number.isFinite(client) ? client : 0,
    region: v("f-region"),
    bucket: v("f-bucket"),
    prefix: v("f-prefix"),
    format: $("f-format").value,
    compression: $("f-compression").value,
    credentials: {},
  };
  if (method === "role") req.credentials.role_arn = v("f-role");
  else {
    req.credentials.access_key_id = v("f-keyid");
    const s = $("f-secret").value;
    if (s) req.credentials.secret_access_key = s;
  }
  return req;
}

let onboardingTimer = 0;
let onboardingSeq = 0;

// onboarding fills in the account ID, external ID and policies of the
// client (and bucket) typed so far.
function onboarding() {
  clearTimeout(onboardingTimer);
  onboardingTimer = setTimeout(async () => {
    const client = $("f-client").value.trim();
    const seq = ++onboardingSeq;
    const set = (acc, ext, perm, trust) => {
      $("o-account").textContent = acc;
      $("o-external").textContent = ext;
      $("o-permission").textContent = perm;
      $("o-trust").textContent = trust;
    };
    if (!/^[1-9][0-9]*$/.test(client)) {
      set("–", "–", "", "");
      $("o-error").textContent = "Enter the client ID to see its external ID and policies.";
      $("o-error").hidden = false;
      return;
    }
    let r;
    try {
      const bucket = $("f-bucket").value.trim();
      r = await api("GET", "/v1/clients/" + client + "/onboarding" + (bucket ? "?bucket=" + encodeURIComponent(bucket) : ""));
    } catch (_) {
      return;
    }
    if (seq !== onboardingSeq) return;
    if (r.status !== 200) {
      set("–", "–", "", "");
      $("o-error").textContent = apiMessage(r);
      $("o-error").hidden = false;
      return;
    }
    $("o-error").hidden = true;
    const o = r.data;
    set(o.account_id, o.external_id, JSON.stringify(o.permission_policy, null, 2), JSON.stringify(o.trust_policy, null, 2));
  }, 250);
}

for (const id of ["f-client", "f-bucket"]) $(id).addEventListener("input", () => method === "role" && onboarding());

function resetEditor() {
  $("editor-form").reset();
  clearProblems();
  $("test-result").hidden = true;
  $("save-anyway").hidden = true;
  $("copied").textContent = "";
}

async function openEditor(it) {
  resetEditor();
  editing = null;
  const d = $("editor");
  if (!it) {
    $("editor-title").textContent = "Add integration";
    $("save").textContent = "Add integration";
    $("f-name").readOnly = false;
    $("f-secret-help").textContent = "Stored encrypted; never shown again.";
    selectTab("role");
    openDialog(d, $("f-name"));
    return;
  }
  // The current version (its ETag) for If-Match, read now.
  const r = await api("GET", path(it.name));
  if (r.status !== 200) {
    showListError(apiMessage(r));
    return;
  }
  const cur = r.data;
  editing = { name: cur.name, etag: r.headers.get("ETag") };
  $("editor-title").textContent = "Edit " + cur.name;
  $("save").textContent = "Save changes";
  $("f-name").value = cur.name;
  $("f-name").readOnly = true;
  $("f-client").value = cur.client_id;
  $("f-region").value = cur.region;
  $("f-bucket").value = cur.bucket;
  $("f-prefix").value = cur.prefix || "";
  $("f-format").value = cur.format;
  $("f-compression").value = cur.compression || "none";
  if (cur.auth.method === "access_key") {
    $("f-keyid").value = cur.auth.access_key_id;
    $("f-secret-help").textContent = "Leave empty to keep the stored secret of this key id.";
    selectTab("key");
  } else {
    $("f-role").value = cur.auth.role_arn || "";
    selectTab("role");
  }
  openDialog(d, $("f-client"));
}

$("add").addEventListener("click", () => openEditor(null));
$("cancel").addEventListener("click", () => closeDialog($("editor")));

$("test").addEventListener("click", async () => {
  const b = $("test");
  b.disabled = true;
  $("test-result").hidden = false;
  $("test-result").className = "result";
  $("test-message").textContent = "Testing: writing the two sample hits to the bucket…";
  $("test-fix").textContent = "";
  try {
    const r = await api("POST", "/v1/integrations/test", request());
    if (r.status === 200) {
      clearProblems();
      showAnswer(r.data);
    } else if (r.status === 400 && r.data && r.data.problems) {
      $("test-result").hidden = true;
      showProblems(r.data.problems);
    } else {
      $("test-result").hidden = true;
      showError(apiMessage(r));
    }
  } catch (e) {
    if (!(e instanceof SignedOut)) showError(e.message);
  } finally {
    b.disabled = false;
  }
});

async function save(anyway) {
  const b = $("save");
  b.disabled = true;
  try {
    const q = anyway ? "?save_anyway=true" : "";
    const r = editing
      ? await api("PUT", path(editing.name) + q, request(), { "If-Match": editing.etag })
      : await api("POST", "/v1/integrations" + q, request());
    if (r.status === 200 || r.status === 201) {
      const name = r.data.name;
      closeDialog($("editor"));
      $("count").textContent = (editing ? "Saved " : "Added ") + name + ".";
      await load();
      return;
    }
    if (r.status === 400 && r.data && r.data.problems) {
      showProblems(r.data.problems);
    } else if (r.status === 422 && r.data && r.data.test) {
      clearProblems();
      showAnswer(r.data.test, "Not saved: the test write failed. ");
      $("save-anyway").hidden = false;
    } else {
      showError(apiMessage(r));
    }
  } catch (e) {
    if (!(e instanceof SignedOut)) showError(e.message);
  } finally {
    b.disabled = false;
  }
}

$("editor-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  save(false);
});
$("save-anyway").addEventListener("click", () => save(true));

// Copy buttons: the text of the element they name.
document.addEventListener("click", async (ev) => {
  const b = ev.target.closest("button.copy");
  if (!b) return;
  const text = $(b.dataset.copy).textContent;
  let done = false;
  try {
    await navigator.clipboard.writeText(text);
    done = true;
  } catch (_) {
    const sel = window.getSelection();
    const range = document.createRange();
    range.selectNodeContents($(b.dataset.copy));
    sel.removeAllRanges();
    sel.addRange(range);
  }
  $("copied").textContent = done ? "Copied." : "Selected: press Ctrl+C to copy.";
});

// ---- start ----------------------------------------------------------------

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const t = $("token").value.trim();
  if (!t) {
    $("login-why").textContent = "Enter the admin token.";
    return;
  }
  signIn(t);
});
$("signout").addEventListener("click", () => signOut("Signed out."));
$("state-filter").addEventListener("change", render);
$("search").addEventListener("input", render);
$("filters").addEventListener("submit", (ev) => ev.preventDefault());

if (sessionStorage.getItem(TOKEN_KEY)) {
  signIn(sessionStorage.getItem(TOKEN_KEY));
} else {
  signOut("");
}
