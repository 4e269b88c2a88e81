// Kiln's session page script: progressive enhancement over server-rendered HTML. Reading needs
// none of it. It sends the composer over SSE (the answer streams in), turns `data-api` forms
// into JSON API calls (cookie + X-CSRF-Token; `data-if-match` sends If-Match, `data-list`
// fields become arrays, `data-path-param` fields fill `{name}` in the path), and opens the
// merge-conflict dialog.
"use strict";

(function () {
  const csrfMeta = document.querySelector('meta[name="csrf"]');
  const csrf = csrfMeta ? csrfMeta.content : "";

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

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(values[k] ?? ""));
  }

  function say(form, text) {
    const out = form.querySelector("output");
    if (out) out.textContent = text; else window.alert(text);
  }

  // ---- data-api forms ----
  async function submitApi(form, extra) {
    if (form.dataset.confirm && !extra && !window.confirm(form.dataset.confirm)) return;
    const payload = Object.assign(body(form), extra || {});
    say(form, "");
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      // `{name}` in data-path takes the value of the field `name` marked data-path-param.
      const params = {};
      for (const f of form.querySelectorAll("[data-path-param]")) params[f.name] = f.value;
      const path = fill(form.dataset.path, params);
      const r = await api(form.dataset.api, path, payload, form.dataset.ifMatch);
      if (r.ok) return done(form, payload, r.data);
      const err = (r.data && r.data.error) || { message: "request failed (" + r.status + ")" };
      if (err.code === "merge_conflict") return conflict(form, err);
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
      document.getElementById("new-share").hidden = false;
      const input = document.getElementById("new-share-url");
      input.value = url;
      input.focus();
      input.select();
      return;
    }
    const then = form.dataset.then;
    if (then) window.location.assign(window.location.pathname + fill(then, payload));
    else window.location.reload();
  }

  // ---- merge conflicts ----
  function conflict(form, err) {
    const dialog = document.getElementById("conflict-dialog");
    const rows = document.getElementById("conflict-rows");
    rows.replaceChildren();
    const show = (v) => (v === null || v === undefined ? "—" : typeof v === "string" ? v : JSON.stringify(v));
    for (const c of (err.details && err.details.conflicts) || []) {
      const tr = el("tr");
      for (const v of [c.field, show(c.base), show(c.ours), show(c.theirs)]) tr.append(el("td", {}, v));
      rows.append(tr);
    }
    dialog.onclick = (ev) => {
      const strategy = ev.target.dataset && ev.target.dataset.strategy;
      if (strategy === undefined) return;
      dialog.close();
      if (strategy) submitApi(form, { strategy });
    };
    dialog.showModal();
    const first = dialog.querySelector("button");
    if (first) first.focus();
  }

  // After a turn the research state, tools, context and statistics have moved on: fetch the
  // page again and swap the side column in (forms keep working: listeners are delegated).
  async function refreshPanels() {
    try {
      const res = await fetch(window.location.href, { credentials: "same-origin" });
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const fresh = doc.querySelector(".side-col");
      const current = document.querySelector(".side-col");
      if (fresh && current) current.replaceWith(document.importNode(fresh, true));
    } catch (_) {
      // The panels stay as they were; a reload shows the new state.
    }
  }

  // ---- the composer: the answer streams in over SSE ----
  function bubble(kind, text) {
    const article = el("article", { class: "msg " + kind });
    article.append(el("div", { class: "who" }, kind));
    const p = el("p", {}, text);
    article.append(p);
    return { article, p };
  }

  function toolBox(summary, text, cls) {
    const d = el("details", { class: "tool " + (cls || "") });
    d.append(el("summary", {}, summary));
    d.append(el("pre", {}, text));
    return d;
  }

  async function send(form) {
    const textarea = form.querySelector("textarea");
    const status = document.getElementById("composer-status");
    const message = textarea.value.trim();
    if (!message) return;
    const list = document.getElementById("conversation");
    const none = document.getElementById("no-messages");
    if (none) none.remove();
    list.append(bubble("user", message).article);
    const answer = bubble("assistant", "");
    answer.article.classList.add("streaming");
    answer.article.setAttribute("aria-busy", "true");
    list.append(answer.article);
    textarea.value = "";
    status.textContent = "Thinking…";
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const finish = (text) => {
      answer.article.classList.remove("streaming");
      answer.article.removeAttribute("aria-busy");
      status.textContent = text;
      button.disabled = false;
    };
    let res;
    try {
      res = await fetch("/v1/sessions/" + form.dataset.session + "/query", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", "X-CSRF-Token": csrf },
        body: JSON.stringify({ message, branch: form.dataset.branch }),
      });
    } catch (e) {
      return finish("Network error: " + e.message);
    }
    if (!res.ok) {
      let msg = "request failed (" + res.status + ")";
      try { msg = (await res.json()).error.message; } catch (_) { /* keep the status */ }
      answer.article.remove();
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
        list.insertBefore(toolBox("Tool call: " + ev.name, ev.arguments, "call"), answer.article);
      } else if (name === "tool_result") {
        const head = "Result of " + ev.name + (ev.ok ? "" : " (failed)") + ": " + ev.text.slice(0, 90);
        list.insertBefore(toolBox(head, ev.text, "result"), answer.article);
      } else if (name === "discovery") {
        list.insertBefore(el("p", { class: "muted event" }, "● discovery: " + (ev.description || "")), answer.article);
      } else if (name === "done") {
        if (!answer.p.textContent && ev.answer) answer.p.textContent = ev.answer;
        answer.article.dataset.node = ev.answer_node || "";
        finished = true;
        finish("Answered.");
        refreshPanels();
      } else if (name === "error") {
        finished = true;
        finish("Error: " + (ev.message || ev.code));
      }
    };
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
    }
    if (!finished) finish("The stream ended early.");
  }

  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form.id === "composer") {
      ev.preventDefault();
      send(form);
    } else if (form.dataset.api) {
      ev.preventDefault();
      submitApi(form);
    }
  });

  // Ctrl/Cmd+Enter sends; the branch switcher follows the selection.
  document.addEventListener("keydown", (ev) => {
    if (ev.target.id === "message" && ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      ev.target.form.requestSubmit();
    }
  });
  document.addEventListener("change", (ev) => {
    if (ev.target.closest("#branch-switcher")) ev.target.form.submit();
  });
  document.addEventListener("click", async (ev) => {
    if (ev.target.id !== "copy-share") return;
    const input = document.getElementById("new-share-url");
    try {
      await navigator.clipboard.writeText(input.value);
      ev.target.textContent = "Copied";
    } catch (_) {
      input.select();
      ev.target.textContent = "Press Ctrl+C";
    }
  });
})();
