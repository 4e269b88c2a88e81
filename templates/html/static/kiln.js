// Kiln's workspace script: progressive enhancement over server-rendered HTML. Reading needs none
// of it. It streams the agent's answer over SSE (Enter sends, Shift+Enter adds a line, Stop
// interrupts), loads older messages upward, switches panel tabs in place, turns `data-api`
// forms into JSON API calls (cookie + X-CSRF-Token; `data-if-match` sends If-Match, `data-list`
// fields become arrays, `data-path-param` fields fill `{name}` in the path), offers Copy, Edit
// (a new branch from just before the message) and Regenerate (a new branch re-asking the last
// question), asks a person to settle merge conflicts one by one, and keeps the sidebar and the
// colour scheme as the reader left them.
"use strict";

(function () {
  const csrfMeta = document.querySelector('meta[name="csrf"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Form fields to a JSON body: `a.b` nests, `x[]` collects, type=number sends numbers,
  // empty fields are left out.
  function body(form) {
    const out = {};
    for (const input of form.querySelectorAll("input, select, textarea")) {
      if (!input.name || input.name === "csrf" || input.disabled) continue;
      if (input.hasAttribute("data-path-param")) continue; // goes into the path, not the body
      if ((input.type === "checkbox" || input.type === "radio") && !input.checked) continue;
      let value = input.value;
      if (value === "") continue;
      if (input.type === "number") value = Number(value);
      if (input.hasAttribute("data-list")) value = value.split(",").map((v) => v.trim()).filter(Boolean);
      let name = input.name;
      const many = name.endsWith("[]");
      if (many) name = name.slice(0, -2);
      const path = name.split(".");
      let at = out;
      for (const p of path.slice(0, -1)) at = at[p] = at[p] || {};
      const last = path[path.length - 1];
      if (many) (at[last] = at[last] || []).push(value);
      else at[last] = value;
    }
    return out;
  }

  async function api(method, path, payload, ifMatch) {
    const headers = { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf };
    if (ifMatch) headers["If-Match"] = ifMatch;
    const res = await fetch(path, {
      method,
      credentials: "same-origin",
      headers,
      body: method === "GET" || method === "DELETE" ? undefined : JSON.stringify(payload || {}),
    });
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    return { ok: res.ok, status: res.status, data };
  }

  const errorOf = (r) => ((r.data && r.data.error) || { message: "request failed (" + r.status + ")" });

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(values[k] ?? ""));
  }

  function say(form, text) {
    const out = form.querySelector("output");
    if (out) out.textContent = text; else window.alert(text);
  }

  const conversation = () => $("#conversation");
  const session = () => (conversation() ? conversation().dataset.session : null);
  const currentBranch = () => (conversation() ? conversation().dataset.branch : null);

  // ---- swapping regions in place ----
  function partUrl(part, href) {
    const u = new URL(href || window.location.href);
    u.searchParams.set("part", part);
    u.hash = "";
    return u;
  }

  async function fetchPart(part, href) {
    const res = await fetch(partUrl(part, href), { credentials: "same-origin" });
    if (!res.ok) throw new Error("status " + res.status);
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    return doc.body;
  }

  async function refreshPanel(href) {
    const panel = $("#panel");
    if (!panel) return;
    ownWrite();
    try {
      const fresh = await fetchPart("panel", href);
      // Folds the reader opened stay open.
      const open = $$("details[open][id]", panel).map((d) => d.id);
      panel.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.importNode(n, true)));
      if (!href) for (const id of open) { const d = document.getElementById(id); if (d) d.open = true; }
      relativeTimes(panel);
      focusableScrolls(panel);
    } catch (_) {
      // The panel stays as it was; a reload shows the new state.
    }
  }

  async function refreshConversation() {
    const conv = conversation();
    if (!conv) return;
    try {
      const fresh = await fetchPart("conversation");
      conv.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.importNode(n, true)));
      conv.scrollTop = conv.scrollHeight;
      watchOlder();
      focusableScrolls(conv);
    } catch (_) {
      // Keep what streamed; a reload shows the stored turn.
    }
  }

  // ---- data-api forms ----
  async function submitApi(form, extra) {
    if (form.dataset.confirm && !extra && !window.confirm(form.dataset.confirm)) return;
    const payload = Object.assign(body(form), extra || {});
    say(form, "");
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      const params = {};
      for (const f of form.querySelectorAll("[data-path-param]")) params[f.name] = f.value;
      const path = fill(form.dataset.path, params);
      if (form.dataset.merge && !extra) return await mergeDialog(form, path, payload);
      const r = await api(form.dataset.api, path, payload, form.dataset.ifMatch);
      if (r.ok) return done(form, payload, r.data);
      const err = errorOf(r);
      if (err.code === "merge_conflict") return mergeDialog(form, path, payload, err);
      say(form, err.message);
    } catch (e) {
      say(form, "network error: " + e.message);
    } finally {
      if (button) button.disabled = false;
    }
  }

  function done(form, payload, data) {
    if (form.dataset.show === "share" && data && data.path) {
      const url = window.location.origin + data.path;
      $("#new-share").hidden = false;
      const input = $("#new-share-url");
      input.value = url;
      input.focus();
      input.select();
      return;
    }
    const then = form.dataset.then;
    if (then) return window.location.assign(window.location.pathname + fill(then, payload));
    // A change in the panel or the header: fetch the regions again rather than the page, so
    // the conversation keeps its scroll position.
    if (form.closest("#panel") && !form.closest(".session-head")) {
      refreshPanel();
      refreshConversation();
    } else {
      window.location.reload();
    }
  }

  // ---- merges: a person settles each conflict ----
  const show = (v) => (v === null || v === undefined ? "—" : typeof v === "string" ? v : JSON.stringify(v));

  async function mergeDialog(form, path, payload, err) {
    // Ask the server what the merge would do, writing nothing; without a preview route, the
    // refusal's conflicts are enough.
    let preview = null;
    if (!err) {
      const r = await api("POST", path + "/preview", payload);
      if (r.ok) preview = r.data;
      else if (r.status !== 404 && r.status !== 405) {
        const e = errorOf(r);
        if (e.code !== "merge_conflict") return say(form, e.message);
        err = e;
      }
      if (!preview && !err) {
        const m = await api("POST", path, payload);
        if (m.ok) return done(form, payload, m.data);
        err = errorOf(m);
        if (err.code !== "merge_conflict") return say(form, err.message);
      }
    }
    const conflicts = (preview && preview.conflicts) || (err && err.details && err.details.conflicts) || [];
    const dialog = $("#conflict-dialog");
    const rows = $("#conflict-rows");
    rows.replaceChildren();
    const into = payload.into || "the target";
    const from = form.dataset.merge;
    $("#conflict-intro").textContent = conflicts.length
      ? "Both " + into + " and " + from + " changed these. Choose what " + into + " keeps:"
      : "No conflicts: merging " + from + " into " + into + " changes this:";
    if (preview && preview.nothing_to_merge) {
      return say(form, "Nothing to merge: " + into + " already has everything on " + from + ".");
    }
    conflicts.forEach((c, i) => {
      const key = c.key || c.field;
      const fs = el("fieldset", { class: "card conflict", "data-key": key });
      fs.append(el("legend", {}, c.subject || c.field));
      if (c.description) fs.append(el("p", {}, c.description));
      const choices = [
        ["ours", "Keep " + into + "’s: " + (c.ours_text || show(c.ours))],
        ["theirs", "Take " + from + "’s: " + (c.theirs_text || show(c.theirs))],
      ];
      if (c.can_keep_both) choices.push(["both", "Keep both"]);
      for (const [value, label] of choices) {
        const id = "conflict-" + i + "-" + value;
        const row = el("div");
        const input = el("input", { type: "radio", name: "conflict-" + i, value, id });
        if (value === "ours") input.checked = true;
        row.append(input, " ", el("label", { for: id }, label));
        fs.append(row);
      }
      if (c.base_text) fs.append(el("p", { class: "muted" }, "Before either: " + c.base_text));
      rows.append(fs);
    });
    const changes = (preview && preview.changes) || [];
    const previewBox = $("#merge-preview");
    previewBox.replaceChildren();
    if (changes.length) {
      previewBox.append(el("p", {}, "The merge will:"));
      const ul = el("ul");
      for (const c of changes.slice(0, 30)) ul.append(el("li", {}, typeof c === "string" ? c : c.text || JSON.stringify(c)));
      previewBox.append(ul);
    }
    dialog.onclick = async (ev) => {
      const strategy = ev.target.dataset && ev.target.dataset.strategy;
      if (strategy === undefined) return;
      dialog.close();
      if (!strategy) return;
      if (strategy === "apply") {
        const resolutions = {};
        for (const fs of $$("fieldset.conflict", rows)) {
          const picked = $("input:checked", fs);
          resolutions[fs.dataset.key] = picked ? picked.value : "ours";
        }
        const extra = conflicts.length ? { resolutions } : {};
        const r = await api("POST", path, Object.assign({}, payload, extra));
        if (r.ok) return done(form, payload, r.data);
        return say(form, errorOf(r).message);
      }
      submitApi(form, { strategy });
    };
    dialog.showModal();
    const first = dialog.querySelector("input, button");
    if (first) first.focus();
  }

  // ---- the conversation ----
  function bubble(kind, text) {
    const article = el("article", { class: "msg " + kind });
    const who = el("div", { class: "who" });
    who.append(el("span", {}, kind === "user" ? "You" : "Agent"));
    article.append(who);
    const p = el("div", { class: kind === "user" ? "md" : "stream" }, text);
    article.append(p);
    return { article, p };
  }

  function toolCard(name, args) {
    const card = el("div", { class: "tool-card" });
    const head = el("div", { class: "tool-head" });
    head.append(el("span", { class: "tool-name" }, name));
    let action = null;
    try { action = JSON.parse(args).action; } catch (_) { action = null; }
    if (action) head.append(" ", el("span", { class: "tool-action" }, "· " + String(action).replace(/_/g, " ")));
    card.append(head);
    const text = el("div", { class: "tool-text muted" }, "running…");
    card.append(text);
    const raw = el("details", { class: "raw" });
    raw.append(el("summary", {}, "Raw JSON"), el("pre", {}, args));
    card.append(raw);
    return { card, text };
  }

  let running = null; // the AbortController of the turn in flight

  // ---- the chat commands (as in `kiln chat`) ----
  const COMMANDS = "/undo (take back the last question; it is kept) · /clear (a fresh branch " +
    "from the start) · /branch NAME · /switch NAME · /checkpoints · /history · /sessions · " +
    "/memory · /help";

  /** Runs `/command args` typed in the composer; true when it was one. */
  async function command(form, text) {
    if (!text.startsWith("/")) return false;
    const status = $("#composer-status");
    const textarea = $("textarea", form);
    const [name, ...rest] = text.slice(1).trim().split(/\s+/);
    const arg = rest.join(" ");
    const sid = form.dataset.session;
    const branch = form.dataset.branch;
    const base = "/web/sessions/" + encodeURIComponent(sid);
    const go = (href) => window.location.assign(href);
    const fail = (r) => { status.textContent = errorOf(r).message; };
    textarea.value = "";
    switch (name) {
      case "help": case "": status.textContent = COMMANDS; break;
      case "undo": {
        status.textContent = "Undoing…";
        const r = await api("POST", "/v1/sessions/" + sid + "/branches/" + encodeURIComponent(branch) + "/undo");
        if (!r.ok) return fail(r), true;
        status.textContent = "Took back \u201c" + r.data.undone + "\u201d; it is kept as " + r.data.saved_as + ".";
        refreshConversation(); refreshPanel();
        break;
      }
      case "clear": {
        const r = await api("POST", "/v1/sessions/" + sid + "/fresh-branch");
        if (!r.ok) return fail(r), true;
        go(base + "?branch=" + encodeURIComponent(r.data.name));
        break;
      }
      case "branch": {
        if (!arg) { status.textContent = "/branch needs a name"; break; }
        const r = await api("POST", "/v1/sessions/" + sid + "/branches", { name: arg, from: { branch } });
        if (!r.ok) return fail(r), true;
        go(base + "?branch=" + encodeURIComponent(arg));
        break;
      }
      case "switch":
        if (!arg) { status.textContent = "/switch needs a branch name"; break; }
        go(base + "?branch=" + encodeURIComponent(arg));
        break;
      case "checkpoints": go(base + "/branches?branch=" + encodeURIComponent(branch)); break;
      case "history": {
        const conv = conversation();
        if (conv) conv.scrollTop = 0;
        status.textContent = "The branch's history is above; older turns load as you scroll up.";
        break;
      }
      case "sessions": go("/"); break;
      case "memory": go("/web/memory"); break;
      default:
        textarea.value = text;
        status.textContent = "Unknown command /" + name + ". " + COMMANDS;
    }
    return true;
  }

  async function send(form, message) {
    const textarea = $("textarea", form);
    const status = $("#composer-status");
    message = (message !== undefined ? message : textarea.value).trim();
    if (!message || running) return;
    const list = $("#messages") || conversation();
    const none = $("#no-messages");
    if (none) none.remove();
    list.append(bubble("user", message).article);
    const answer = bubble("assistant", "");
    answer.article.classList.add("streaming");
    answer.article.setAttribute("aria-busy", "true");
    list.append(answer.article);
    const conv = conversation();
    conv.scrollTop = conv.scrollHeight;
    textarea.value = "";
    status.textContent = "Thinking…";
    const button = $("button[type=submit]", form);
    const stop = $("#stop");
    button.disabled = true;
    stop.hidden = false;
    const controller = new AbortController();
    running = controller;
    const cards = {};
    const finish = (text, refresh) => {
      answer.article.classList.remove("streaming");
      answer.article.removeAttribute("aria-busy");
      status.textContent = text;
      button.disabled = false;
      stop.hidden = true;
      running = null;
      if (refresh) {
        refreshConversation();
        refreshPanel();
        refreshSidebarTitle();
      }
      textarea.focus();
    };
    let res;
    try {
      res = await fetch("/v1/sessions/" + form.dataset.session + "/query", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", "X-CSRF-Token": csrf },
        body: JSON.stringify({ message, branch: form.dataset.branch }),
        signal: controller.signal,
      });
    } catch (e) {
      return finish(controller.signal.aborted ? "Stopped." : "Network error: " + e.message, controller.signal.aborted);
    }
    if (!res.ok) {
      let msg = "request failed (" + res.status + ")";
      try { msg = (await res.json()).error.message; } catch (_) { /* keep the status */ }
      answer.article.remove();
      textarea.value = message;
      return finish(msg);
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let finished = false;
    const handle = (name, data) => {
      let ev;
      try { ev = JSON.parse(data); } catch (_) { return; }
      if (name === "queued") {
        status.textContent = "Waiting for " + ev.ahead + " earlier question" + (ev.ahead === 1 ? "" : "s") + " on this branch…";
      } else if (name === "started") {
        status.textContent = "Thinking…";
      } else if (name === "token") {
        answer.p.textContent += ev.text;
      } else if (name === "tool_call") {
        const c = toolCard(ev.name, ev.arguments || "");
        cards[ev.id || ev.name] = c;
        list.insertBefore(c.card, answer.article);
        status.textContent = "Running " + ev.name + "…";
      } else if (name === "tool_result") {
        const c = cards[ev.id || ev.name] || toolCard(ev.name, "");
        if (!c.card.isConnected) list.insertBefore(c.card, answer.article);
        c.text.classList.remove("muted");
        c.text.textContent = ev.text;
        if (!ev.ok) c.card.classList.add("failed");
      } else if (name === "discovery") {
        list.insertBefore(el("p", { class: "muted event" }, "● discovery: " + (ev.description || "")), answer.article);
      } else if (name === "done") {
        if (!answer.p.textContent && ev.answer) answer.p.textContent = ev.answer;
        finished = true;
        finish("Answered.", true);
      } else if (name === "error") {
        finished = true;
        finish("Error: " + (ev.message || ev.code), true);
      }
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let name = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (data.length) handle(name, data.join("\n"));
        }
        const near = conv.scrollHeight - conv.scrollTop - conv.clientHeight < 160;
        if (near) conv.scrollTop = conv.scrollHeight;
      }
    } catch (e) {
      if (!controller.signal.aborted) return finish("The stream broke: " + e.message, true);
    }
    if (controller.signal.aborted) {
      // The server keeps what was said so far, marked interrupted; show it as stored.
      status.textContent = "Stopping…";
      setTimeout(() => finish("Stopped. The partial answer is kept, marked interrupted.", true), 400);
    } else if (!finished) {
      finish("The stream ended early.", true);
    }
  }

  // The page title and the sidebar follow a session that named itself after its first request.
  async function refreshSidebarTitle() {
    const id = session();
    if (!id) return;
    const r = await api("GET", "/v1/sessions/" + encodeURIComponent(id));
    if (!r.ok || !r.data) return;
    const h1 = $("#session-name");
    if (h1 && h1.textContent !== r.data.name) {
      h1.textContent = r.data.name;
      document.title = r.data.name + " · Kiln";
      const mine = $("#side-sessions a[aria-current] .name");
      if (mine) mine.textContent = r.data.name;
    }
  }

  // ---- Copy, Edit, Regenerate ----
  const sourceOf = (article) => {
    const t = $("template.src", article);
    return t ? t.content.textContent : $(".md", article).textContent;
  };

  function stamp() {
    return new Date().toISOString().slice(5, 19).replace(/[-:T]/g, "");
  }

  // A new branch from `node`, then the question asked again there (the page of the new branch
  // sends it on load).
  async function forkAndAsk(kind, node, text, where) {
    let name = kind + "-" + stamp();
    for (let i = 0; i < 3; i++) {
      const r = await api("POST", "/v1/sessions/" + session() + "/branches", { name, from: { node } });
      if (r.ok) {
        sessionStorage.setItem("kiln-pending", JSON.stringify({ session: session(), branch: name, text }));
        return window.location.assign(window.location.pathname + "?branch=" + encodeURIComponent(name));
      }
      const err = errorOf(r);
      if (r.status !== 409) return where(err.message);
      name = kind + "-" + stamp() + "-" + (i + 2);
    }
    where("could not name the new branch");
  }

  async function messageAction(button) {
    const article = button.closest("article.msg");
    const act = button.dataset.act;
    if (act === "copy") {
      try {
        await navigator.clipboard.writeText(sourceOf(article));
        button.textContent = "Copied";
      } catch (_) {
        button.textContent = "Copy failed";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    } else if (act === "edit") {
      if ($(".edit-box", article)) return;
      const box = el("form", { class: "edit-box" });
      const id = "edit-" + article.dataset.node;
      box.append(el("label", { for: id, class: "vh" }, "Edited message"));
      const ta = el("textarea", { id, rows: "3" });
      ta.value = sourceOf(article);
      box.append(ta);
      box.append(el("p", { class: "muted" }, "Sends the edited message on a new branch from just before this one; " + currentBranch() + " keeps the original."));
      const row = el("div", { class: "row" });
      const ok = el("button", { type: "submit", class: "primary" }, "Send on a new branch");
      const cancel = el("button", { type: "button" }, "Cancel");
      const out = el("output", { role: "alert" });
      row.append(ok, cancel, out);
      box.append(row);
      cancel.onclick = () => box.remove();
      box.onsubmit = (ev) => {
        ev.preventDefault();
        const text = ta.value.trim();
        if (!text) return;
        ok.disabled = true;
        forkAndAsk("edit", article.dataset.parent, text, (m) => { out.textContent = m; ok.disabled = false; });
      };
      article.append(box);
      ta.focus();
    } else if (act === "regenerate") {
      // The question this answers: the nearest user message above it.
      let prev = article.previousElementSibling;
      while (prev && !(prev.matches && prev.matches("article.msg.user"))) prev = prev.previousElementSibling;
      if (!prev) return window.alert("The question this answers is on an older page.");
      button.disabled = true;
      forkAndAsk("regenerate", prev.dataset.parent, sourceOf(prev), (m) => { window.alert(m); button.disabled = false; });
    }
  }

  // ---- older history loads upward ----
  let observer = null;
  function watchOlder() {
    const link = $("#older-link");
    if (!link || !("IntersectionObserver" in window)) return;
    if (observer) observer.disconnect();
    observer = new IntersectionObserver(async (entries) => {
      if (!entries.some((e) => e.isIntersecting)) return;
      observer.disconnect();
      await loadOlder(link);
    }, { root: conversation(), rootMargin: "200px 0px 0px 0px" });
    observer.observe(link);
  }

  async function loadOlder(link) {
    const conv = conversation();
    const holder = link.closest("#older");
    link.textContent = "Loading older messages…";
    try {
      const fresh = await fetchPart("conversation", link.href);
      const before = conv.scrollHeight;
      const items = $("#messages", fresh);
      const list = $("#messages");
      if (items && list) list.prepend(...Array.from(items.childNodes).map((n) => document.importNode(n, true)));
      const next = $("#older", fresh);
      if (next) holder.replaceWith(document.importNode(next, true));
      else holder.remove();
      conv.scrollTop += conv.scrollHeight - before;
      watchOlder();
    } catch (_) {
      link.textContent = "Older messages";
    }
  }

  // ---- tabs switch in place ----
  async function openTab(a, push) {
    const href = a.href;
    await refreshPanel(href);
    if (push) history.pushState({ tab: true }, "", href);
    const body = $("#panel-body");
    if (body) body.focus({ preventScroll: true });
  }

  // ---- sidebar and theme ----
  function applySidebar() {
    const closed = localStorage.getItem("kiln-sidebar") === "closed";
    const narrow = window.matchMedia("(max-width: 75rem)").matches;
    document.body.classList.toggle("sidebar-closed", closed && !narrow);
    const t = $("#sidebar-toggle");
    if (t) t.setAttribute("aria-expanded", narrow ? String(document.body.classList.contains("sidebar-open")) : String(!closed));
  }

  function toggleSidebar() {
    const narrow = window.matchMedia("(max-width: 75rem)").matches;
    if (narrow) document.body.classList.toggle("sidebar-open");
    else localStorage.setItem("kiln-sidebar", document.body.classList.contains("sidebar-closed") ? "open" : "closed");
    applySidebar();
  }

  function effectiveTheme() {
    const set = document.documentElement.dataset.theme;
    if (set) return set;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function toggleTheme() {
    const next = effectiveTheme() === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    document.cookie = "kiln_theme=" + next + "; Path=/; Max-Age=31536000; SameSite=Strict";
    themeLabel();
  }

  function themeLabel() {
    const b = $("#theme-toggle");
    if (!b) return;
    const dark = effectiveTheme() === "dark";
    b.setAttribute("aria-pressed", String(dark));
    const label = $("span", b);
    if (label) label.textContent = dark ? "Light mode" : "Dark mode";
  }

  // A box that scrolls sideways (a wide table on a phone) must be reachable by keyboard.
  function focusableScrolls(root) {
    for (const box of $$(".scroll", root)) {
      if (box.scrollWidth > box.clientWidth + 1 && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        if (!box.hasAttribute("aria-label")) {
          const cap = $("caption", box);
          box.setAttribute("role", "region");
          box.setAttribute("aria-label", cap ? cap.textContent : "Table (scrolls sideways)");
        }
      }
    }
  }

  function relativeTimes(root) {
    const now = Date.now();
    for (const t of $$("time[data-relative]", root)) {
      const at = Date.parse(t.getAttribute("datetime"));
      if (Number.isNaN(at)) continue;
      const s = Math.max(0, (now - at) / 1000);
      const text = s < 60 ? "just now" : s < 3600 ? Math.floor(s / 60) + " min ago" : s < 86400 ? Math.floor(s / 3600) + " h ago" : s < 86400 * 30 ? Math.floor(s / 86400) + " d ago" : t.textContent;
      t.title = t.textContent;
      t.textContent = text;
    }
  }

  // ---- the optimizer panel (ALchemist's loop, in the session) ----
  const optBase = () => { const o = $("#optimizer"); return o ? o.dataset.base : null; };
  const num = (v) => (v === "" || v === null || v === undefined ? undefined : Number(v));
  const cellValue = (input) => {
    const v = input.value.trim();
    if (v === "") return undefined;
    const n = Number(v);
    return Number.isFinite(n) && input.getAttribute("inputmode") === "decimal" ? n : v;
  };

  async function optSpace(form) {
    const variables = [];
    for (const row of $$("tr.var-row", form)) {
      const f = (n) => $(`[name=${n}]`, row).value.trim();
      if (!f("name")) continue;
      const v = { name: f("name"), type: f("type") };
      if (v.type === "categorical") v.categories = f("levels").split(",").map((x) => x.trim()).filter(Boolean);
      else v.bounds = [num(f("lower")), num(f("upper"))];
      if (f("unit")) v.unit = f("unit");
      if (f("precision")) v.precision = num(f("precision"));
      if (f("description")) v.description = f("description");
      variables.push(v);
    }
    const objective = { name: $("[name=objective]", form).value.trim(), goal: $("[name=goal]", form).value };
    return api("PUT", optBase() + "/space", { variables, objective });
  }

  async function optResults(form) {
    const experiments = [];
    const rows = $$("tr.result-row", form);
    for (const row of rows) {
      const inputs = {};
      let output;
      let any = false;
      for (const input of $$("input", row)) {
        const v = cellValue(input);
        if (v === undefined) continue;
        any = true;
        if (input.name === "__output") output = v; else inputs[input.name] = v;
      }
      if (any) experiments.push({ inputs, output });
    }
    if (!experiments.length) return { ok: false, data: { error: { message: "fill in at least one row" } } };
    return api("POST", optBase() + "/experiments", { experiments });
  }

  function addResultRow(values) {
    const body = $("#results-table tbody");
    const last = $$("tr.result-row", body).pop();
    let row = last;
    const empty = last && $$("input", last).every((i) => !i.value.trim());
    if (!empty) {
      row = last.cloneNode(true);
      for (const i of $$("input", row)) i.value = "";
      body.append(row);
    }
    for (const [k, v] of Object.entries(values || {})) {
      const input = $(`input[name="${CSS.escape(k)}"]`, row);
      if (input) input.value = v;
    }
    const out = $("input[name=__output]", row);
    if (values && out) out.focus(); else $("input", row).focus();
  }

  // Spreadsheet paste (tabs) becomes CSV; the server reads it against the space.
  function toCsv(text) {
    const lines = text.replace(/\r/g, "").split("\n").filter((l) => l.trim());
    if (!lines.length || !lines[0].includes("\t")) return lines.join("\n");
    const quote = (c) => (/[",\n]/.test(c) ? '"' + c.replace(/"/g, '""') + '"' : c);
    return lines.map((l) => l.split("\t").map((c) => quote(c.trim())).join(",")).join("\n");
  }

  async function csvPost(text, query) {
    const res = await fetch(optBase() + "/experiments/csv" + query, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "text/csv", Accept: "application/json", "X-CSRF-Token": csrf },
      body: text,
    });
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    return { ok: res.ok, status: res.status, data };
  }

  let csvText = "";
  async function csvPreview(text) {
    csvText = text;
    const box = $("#opt-preview");
    box.replaceChildren(el("p", { class: "muted" }, "Reading…"));
    const r = await csvPost(text, "?preview=true");
    box.replaceChildren();
    if (!r.ok) return box.append(el("p", { role: "alert", class: "bad" }, errorOf(r).message));
    const rep = r.data;
    // The column mapping: each header can be pointed at a variable, the objective, or nothing.
    const space = $$("#space-table tr.var-row [name=name]").map((i) => i.value).filter(Boolean);
    const objective = ($("#opt-space [name=objective]") || {}).value || "output";
    const targets = [...space, objective, "noise"];
    const map = el("div", { class: "row", id: "csv-mapping" });
    map.append(el("span", { class: "muted" }, "Columns:"));
    (rep.columns || []).forEach((c, i) => {
      const id = "csv-col-" + i;
      const sel = el("select", { id, "data-col": String(i) });
      for (const t of targets) {
        const o = el("option", { value: t }, t);
        if (t === c.column) o.selected = true;
        sel.append(o);
      }
      const ignore = el("option", { value: "" }, "ignore");
      if (!targets.includes(c.column)) ignore.selected = true;
      sel.append(ignore);
      const label = el("label", { for: id }, c.column + " → ");
      map.append(label, sel);
    });
    box.append(map);
    const good = rep.rows || [];
    const bad = rep.errors || [];
    box.append(el("p", {}, good.length + " row(s) read" + (bad.length ? ", " + bad.length + " with errors:" : ".")));
    if (bad.length) {
      const ul = el("ul", { id: "csv-errors", class: "bad" });
      for (const e of bad) ul.append(el("li", {}, "line " + (e.line || e.row + 2) + (e.field ? " (" + e.field + ")" : "") + ": " + e.message));
      box.append(ul);
    }
    if (good.length) {
      const wrap = el("div", { class: "scroll" });
      const t = el("table", { id: "csv-rows" });
      const head = el("tr");
      const names = Object.keys(good[0].experiment.inputs);
      for (const n of [...names, objective]) head.append(el("th", { scope: "col" }, n));
      const thead = el("thead");
      thead.append(head);
      const tbody = el("tbody");
      for (const g of good.slice(0, 50)) {
        const tr = el("tr");
        for (const n of names) tr.append(el("td", { class: "num" }, String(g.experiment.inputs[n])));
        tr.append(el("td", { class: "num" }, String(g.experiment.output)));
        tbody.append(tr);
      }
      t.append(thead, tbody);
      wrap.append(t);
      box.append(wrap);
      focusableScrolls(box);
      const go = el("button", { type: "button", class: "primary", id: "csv-commit" }, "Add the " + good.length + " good row(s)" + (bad.length ? ", skip the rest" : ""));
      const out = el("output", { role: "alert" });
      go.onclick = async () => {
        go.disabled = true;
        const c = await csvPost(csvText, bad.length ? "?skip_invalid=true" : "");
        if (c.ok) { refreshPanel(); refreshConversation(); } else { out.textContent = errorOf(c).message; go.disabled = false; }
      };
      box.append(el("div", { class: "row" }), go, out);
    }
  }

  function remapCsv() {
    const lines = csvText.split("\n");
    const header = lines[0].split(",");
    for (const sel of $$("#csv-mapping select")) header[Number(sel.dataset.col)] = sel.value || "ignored_" + sel.dataset.col;
    lines[0] = header.join(",");
    csvPreview(lines.join("\n"));
  }

  // A person settles a lock the agent proposed: Confirm records it, Reject asks why.
  async function settleLock(button) {
    const confirm = !!button.dataset.confirmLock;
    const id = confirm ? button.dataset.confirmLock : button.dataset.rejectLock;
    const out = button.parentElement.querySelector("output");
    let payload;
    if (!confirm) {
      const reason = window.prompt("Why reject this proposed lock?");
      if (!reason) return;
      payload = { reason };
    }
    button.disabled = true;
    try {
      const r = await api("POST", optBase() + "/locks/" + encodeURIComponent(id) + (confirm ? "/confirm" : "/reject"), payload);
      if (r.ok) {
        refreshPanel();
        refreshConversation();
        return;
      }
      if (out) out.textContent = errorOf(r).message;
    } catch (e) {
      if (out) out.textContent = "network error: " + e.message;
    } finally {
      button.disabled = false;
    }
  }

  async function optSubmit(form) {
    const out = $("output", form);
    if (out) out.textContent = "";
    const button = $("button[type=submit]", form);
    if (button) button.disabled = true;
    try {
      let r;
      if (form.id === "opt-space") r = await optSpace(form);
      else if (form.id === "opt-results") r = await optResults(form);
      else if (form.id === "opt-suggest") {
        const b = body(form);
        if (!b.strategy) delete b.strategy;
        r = await api("POST", optBase() + "/suggest", b);
      } else if (form.id === "opt-lock") r = await api("POST", optBase() + "/locks", body(form));
      else if (form.id === "opt-design") {
        const b = Object.assign({ action: "initial_design" }, body(form));
        r = await api("POST", "/v1/sessions/" + session() + "/tools/bayesian_optimizer", { branch: currentBranch(), arguments: b });
      }
      if (r.ok) {
        refreshPanel();
        refreshConversation();
        return;
      }
      const err = errorOf(r);
      const rows = err.details && err.details.rows;
      const text = rows && rows.length
        ? err.message + " — " + rows.map((e) => "row " + (e.row + 1) + (e.field ? " (" + e.field + ")" : "") + ": " + e.message).join("; ")
        : err.message;
      if (out) out.textContent = text;
    } catch (e) {
      if (out) out.textContent = "network error: " + e.message;
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ---- wiring ----
  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form.id === "composer") {
      ev.preventDefault();
      const text = $("textarea", form).value.trim();
      command(form, text).then((was) => { if (!was) send(form); });
    } else if (form.id && form.id.startsWith("opt-")) {
      ev.preventDefault();
      optSubmit(form);
    } else if (form.dataset.api) {
      ev.preventDefault();
      submitApi(form);
    }
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.target.id === "message" && ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      ev.target.form.requestSubmit();
    }
  });

  document.addEventListener("change", async (ev) => {
    const t = ev.target;
    if (t.closest("#branch-switcher")) return t.form.submit();
    if (t.closest("#side-filter")) {
      const u = new URL(window.location.href);
      u.searchParams.set("side_status", t.value);
      try {
        const fresh = await fetchPart("sidebar", u.href);
        $("#sidebar").replaceChildren(...Array.from(fresh.childNodes).map((n) => document.importNode(n, true)));
        relativeTimes($("#sidebar"));
        history.replaceState(null, "", u.href);
      } catch (_) {
        t.form.submit();
      }
      return;
    }
    if (t.id === "opt-csv" && t.files && t.files[0]) return csvPreview(await t.files[0].text());
    if (t.closest("#csv-mapping")) return remapCsv();
    if (t.id === "dep-var") {
      $("#dep-plot").src = optBase() + "/plots/dependence.svg?variable=" + encodeURIComponent(t.value);
      $("#dep-plot").alt = "The model's mean and uncertainty band along " + t.value;
    }
    if (t.id === "map-x" || t.id === "map-y") {
      $("#map-plot").src = optBase() + "/plots/map.svg?x=" + encodeURIComponent($("#map-x").value) + "&y=" + encodeURIComponent($("#map-y").value);
    }
  });

  document.addEventListener("click", async (ev) => {
    const t = ev.target;
    if (t.id === "stop" && running) {
      running.abort();
      return;
    }
    if (t.id === "sidebar-toggle" || (t.closest && t.closest("#sidebar-toggle"))) return toggleSidebar();
    if (t.id === "theme-toggle" || (t.closest && t.closest("#theme-toggle"))) return toggleTheme();
    if (t.dataset && t.dataset.act) return messageAction(t);
    if (t.id === "add-result-row") return addResultRow();
    if (t.id === "live-new") {
      t.hidden = true;
      return refreshConversation();
    }
    if (t.dataset && (t.dataset.confirmLock || t.dataset.rejectLock)) return settleLock(t);
    if (t.dataset && t.dataset.accept) {
      let inputs = {};
      try { inputs = JSON.parse(t.dataset.accept); } catch (_) { inputs = {}; }
      return addResultRow(inputs);
    }
    if (t.id === "add-var-row") {
      const rows = $$("#space-table tr.var-row");
      const row = rows[rows.length - 1].cloneNode(true);
      for (const i of $$("input", row)) i.value = "";
      rows[rows.length - 1].after(row);
      return $("input", row).focus();
    }
    if (t.id === "opt-paste-preview") return csvPreview(toCsv($("#opt-paste").value));
    const tab = t.closest && t.closest(".tabs a");
    if (tab && !ev.ctrlKey && !ev.metaKey && !ev.shiftKey && ev.button === 0) {
      ev.preventDefault();
      return openTab(tab, true);
    }
    const restore = t.closest && t.closest("[data-restore]");
    if (restore) {
      ev.preventDefault();
      const name = restore.dataset.restore;
      const branch = currentBranch();
      if (!window.confirm("Restore checkpoint " + name + " onto " + branch + "? The head of " + branch + " moves back to it; nothing is lost: the current head is kept as a checkpoint you can restore again.")) return;
      const r = await api("POST", "/v1/sessions/" + session() + "/checkpoints/" + encodeURIComponent(name) + "/restore", { branch });
      if (r.ok) window.location.reload(); else window.alert(errorOf(r).message);
      return;
    }
    if (t.id === "copy-share") {
      const input = $("#new-share-url");
      try {
        await navigator.clipboard.writeText(input.value);
        t.textContent = "Copied";
      } catch (_) {
        input.select();
        t.textContent = "Press Ctrl+C";
      }
    }
  });

  window.addEventListener("popstate", () => {
    if (document.body.classList.contains("workspace")) refreshPanel();
  });
  window.addEventListener("resize", applySidebar);

  // ---- live: what others do in this session appears without a reload ----
  let liveTimer = null;
  let quietUntil = 0;
  // Our own writes refresh the page themselves; their echo on the live stream waits a moment.
  function ownWrite() { quietUntil = Date.now() + 1200; }
  // The reader is working in the panel (touched it in the last half minute, or left typed
  // values in it): leave it as it is.
  let panelTouched = 0;
  for (const kind of ["input", "click", "keydown", "toggle"]) {
    document.addEventListener(kind, (ev) => {
      if (ev.target && ev.target.closest && ev.target.closest("#panel")) panelTouched = Date.now();
    }, true);
  }
  const panelBusy = () => Date.now() - panelTouched < 30000 || $$("#panel input, #panel textarea").some((i) =>
    (i.type === "checkbox" || i.type === "radio") ? i.checked !== i.defaultChecked : i.type !== "hidden" && i.value !== i.defaultValue);
  function liveChange() {
    if (running) return; // our own turn refreshes when it ends
    clearTimeout(liveTimer);
    liveTimer = setTimeout(async () => {
      if (Date.now() < quietUntil) return liveChange();
      const conv = conversation();
      const near = conv && conv.scrollHeight - conv.scrollTop - conv.clientHeight < 160;
      if (near && !$(".edit-box")) await refreshConversation();
      else if ($("#live-new")) $("#live-new").hidden = false;
      if (!panelBusy() && !(document.activeElement && document.activeElement.closest("#panel"))) refreshPanel();
    }, Math.max(300, quietUntil - Date.now()));
  }

  function watchLive() {
    const id = session();
    if (!id || !("EventSource" in window)) return;
    const es = new EventSource("/v1/sessions/" + encodeURIComponent(id) + "/events/stream");
    for (const kind of ["nodes", "branches", "session"]) es.addEventListener(kind, liveChange);
    // Who else is here, and another member's turn as it streams (ours shows in its bubble).
    const me = ($(".who-am-i") || { textContent: "" }).textContent.trim();
    es.addEventListener("presence", (e) => {
      const box = $("#presence");
      if (!box) return;
      const names = JSON.parse(e.data).present.map((p) => p.user);
      box.textContent = names.some((n) => n !== me) ? "Here now: " + names.join(", ") : "";
    });
    let head = "", said = "";
    es.addEventListener("turn", (e) => {
      const d = JSON.parse(e.data);
      const box = $("#live-turn");
      if (!box || d.user === me) return;
      if (d.event === "started") { head = d.user + " asks on " + d.branch + ": \u201c" + d.text + "\u201d"; said = ""; }
      else if (d.event === "tool_call") head += " \u00b7 " + d.name;
      else if (d.event === "token") said += d.text;
      else if (d.event === "done" || d.event === "error") { box.hidden = true; return liveChange(); }
      box.hidden = false;
      box.textContent = head + (said ? " \u2014 " + said.slice(-400) : " \u2026");
    });
    es.addEventListener("closed", () => es.close());
    // Let go of the stream before the page goes (a reload must not wait on it).
    window.addEventListener("pagehide", () => es.close());
    window.addEventListener("beforeunload", () => es.close());
  }

  function start() {
    applySidebar();
    focusableScrolls(document);
    window.addEventListener("resize", () => focusableScrolls(document));
    watchLive();
    themeLabel();
    relativeTimes(document);
    const conv = conversation();
    if (conv) {
      // Open at the newest message, unless the address points at one.
      const u = new URL(window.location.href);
      const target = window.location.hash ? document.getElementById(window.location.hash.slice(1)) : null;
      if (target) target.scrollIntoView({ block: "center" });
      else if (!u.searchParams.has("before")) conv.scrollTop = conv.scrollHeight;
      watchOlder();
    }
    const hint = $("#composer-hint");
    const composer = $("#composer");
    if (hint && composer) hint.hidden = false;
    // A question left for this branch by Edit or Regenerate is asked now.
    const pending = sessionStorage.getItem("kiln-pending");
    if (pending && composer) {
      let p = null;
      try { p = JSON.parse(pending); } catch (_) { p = null; }
      if (p && p.session === composer.dataset.session && p.branch === composer.dataset.branch) {
        sessionStorage.removeItem("kiln-pending");
        send(composer, p.text);
      }
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
