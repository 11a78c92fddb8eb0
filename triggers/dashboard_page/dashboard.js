// The operators' dashboard (docs/dashboard.md). Plain JavaScript, no framework, no outside resource.
// Every value from the API reaches the page through textContent: display names are user input.
"use strict";

(function () {
  const KEY_STORAGE = "communityProvisioner.functionKey";
  const KEY_HEADER = "x-functions-key";
  // The page is served at <api base>/dashboard; the API is beside it, on the same origin.
  const API_BASE = window.location.pathname.replace(/\/dashboard\/?$/, "") || "/api";
  const REQUEST_PAGE = 50;
  const BATCH_PAGE = 20;
  const RETRYABLE = new Set(["Failed", "Canceled"]);
  const EVENT_LABELS = {
    phase: "Phase",
    check: "Status check",
    retry: "Graph asked to wait",
    error: "Error",
  };

  const $ = (id) => document.getElementById(id);
  const state = {
    requests: [],
    batches: [],
    nextLink: null,
    shown: REQUEST_PAGE,
    filters: { status: "", displayName: "", batchId: "" },
    batchStatus: "",
    detailId: null,
    detail: null,
    timer: null,
    generation: 0,
    needsKey: false,
    busy: false,
  };
  const refreshSeconds = readRefreshSeconds();

  class AuthError extends Error {}
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // ------------------------------------------------------------------------------------------- the key

  function readRefreshSeconds() {
    const value = Number(new URLSearchParams(window.location.search).get("refresh"));
    return Number.isFinite(value) && value >= 1 ? Math.min(value, 300) : 5;
  }

  function takeKeyFromUrl() {
    // A key typed into the address bar (?code=...) moves to session storage and out of the location bar.
    const url = new URL(window.location.href);
    const code = url.searchParams.get("code");
    if (code === null) return;
    if (code) sessionStorage.setItem(KEY_STORAGE, code);
    url.searchParams.delete("code");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }

  function storedKey() {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  }

  function askForKey(message) {
    state.needsKey = true;
    stopRefresh();
    $("key-panel").hidden = false;
    $("key-message").textContent = message;
    $("forget-key").hidden = !storedKey();
    $("key-input").focus();
    showRefreshState();
  }

  function useKey(event) {
    event.preventDefault();
    const input = $("key-input");
    const key = input.value.trim();
    input.value = "";
    if (!key) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    state.needsKey = false;
    $("key-panel").hidden = true;
    $("key-message").textContent = "";
    $("forget-key").hidden = false;
    refresh();
  }

  function forgetKey() {
    sessionStorage.removeItem(KEY_STORAGE);
    $("forget-key").hidden = true;
    askForKey("The key was removed from this tab. Enter a key to go on.");
  }

  // ------------------------------------------------------------------------------------------- the API

  async function api(method, path, query) {
    const search = query && String(query) ? "?" + String(query) : "";
    const headers = { Accept: "application/json" };
    const key = storedKey();
    if (key) headers[KEY_HEADER] = key;
    let response;
    try {
      response = await fetch(API_BASE + path + search, {
        method: method,
        headers: headers,
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
    } catch (err) {
      throw new ApiError(0, "The app did not answer (" + err.message + ").");
    }
    if (response.status === 401) {
      if (key) sessionStorage.removeItem(KEY_STORAGE);
      throw new AuthError(
        key
          ? "The key was refused (401 Unauthorized). Enter a host key of the function app."
          : "The app needs a key (401 Unauthorized). Enter a host key of the function app."
      );
    }
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (err) {
      body = null;
    }
    const type = response.headers.get("Content-Type") || "";
    if (type.includes("problem+json") || !body || response.status >= 500 || response.status === 404) {
      const detail = body && (body.detail || body.title);
      throw new ApiError(response.status, detail || "The app answered " + response.status + ".");
    }
    return { status: response.status, body: body };
  }

  function sameOriginQuery(link) {
    // nextLink is absolute (PUBLIC_BASE_URL may name another host): keep only its query, ask this origin.
    return new URL(link, window.location.href).searchParams;
  }

  // ------------------------------------------------------------------------------------------- refresh

  async function refresh() {
    if (state.needsKey) return;
    const generation = ++state.generation;
    stopRefresh();
    state.busy = true;
    showRefreshState();
    try {
      const requestQuery = new URLSearchParams({ top: String(Math.min(state.shown, 500)) });
      if (state.filters.status) requestQuery.set("status", state.filters.status);
      if (state.filters.displayName) requestQuery.set("displayName", state.filters.displayName);
      if (state.filters.batchId) requestQuery.set("batchId", state.filters.batchId);
      const batchQuery = new URLSearchParams({ top: String(BATCH_PAGE) });
      if (state.batchStatus) batchQuery.set("status", state.batchStatus);
      const [requests, batches, detail] = await Promise.all([
        api("GET", "/communities/requests", requestQuery),
        api("GET", "/communities/batches", batchQuery),
        state.detailId ? loadDetail(state.detailId) : Promise.resolve(null),
      ]);
      if (generation !== state.generation) return; // a newer refresh (other filters) owns the page
      state.requests = requests.body.items || [];
      state.nextLink = requests.body.nextLink || null;
      state.batches = batches.body.items || [];
      state.detail = detail;
      state.updatedAt = new Date();
      renderBatches();
      renderRequests();
      renderDetail();
      if ($("message").classList.contains("error")) say("");
    } catch (err) {
      if (generation !== state.generation) return;
      handleError(err);
    } finally {
      if (generation === state.generation) {
        state.busy = false;
        scheduleRefresh();
      }
    }
  }

  async function loadDetail(id) {
    try {
      return (await api("GET", "/communities/requests/" + encodeURIComponent(id))).body;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return { id: id, missing: true };
      throw err;
    }
  }

  async function loadMore() {
    if (!state.nextLink) return;
    const button = $("load-more");
    button.disabled = true;
    try {
      const answer = await api("GET", "/communities/requests", sameOriginQuery(state.nextLink));
      state.requests = state.requests.concat(answer.body.items || []);
      state.nextLink = answer.body.nextLink || null;
      state.shown = state.requests.length;
      renderRequests();
    } catch (err) {
      handleError(err);
    } finally {
      button.disabled = false;
    }
  }

  function anythingRunning() {
    return (
      state.requests.some((row) => row.status === "Running") ||
      state.batches.some((row) => row.status === "Running") ||
      Boolean(state.detail && state.detail.status === "Running")
    );
  }

  function stopRefresh() {
    if (state.timer !== null) window.clearTimeout(state.timer);
    state.timer = null;
  }

  function scheduleRefresh() {
    stopRefresh();
    if (!state.needsKey && anythingRunning()) {
      state.timer = window.setTimeout(refresh, refreshSeconds * 1000);
    }
    showRefreshState();
  }

  function showRefreshState() {
    const line = $("refresh-state");
    const live = state.timer !== null;
    line.classList.toggle("live", live);
    if (state.needsKey) {
      line.textContent = "Waiting for a key";
    } else if (state.busy && !state.updatedAt) {
      line.textContent = "Loading…";
    } else {
      const updated = state.updatedAt ? "Updated " + clock(state.updatedAt) + ". " : "";
      line.textContent =
        updated +
        (live
          ? "Refreshing every " + refreshSeconds + " s while something is running."
          : "Auto-refresh off: nothing is running.");
    }
    line.dataset.autoRefresh = live ? "on" : "off";
  }

  function handleError(err) {
    if (err instanceof AuthError) {
      askForKey(err.message);
    } else {
      say(err.message || String(err), true);
    }
  }

  // ------------------------------------------------------------------------------------------- actions

  async function retry(id) {
    say("Retrying " + id + "…");
    try {
      const answer = await api("POST", "/communities/requests/" + encodeURIComponent(id) + "/retry");
      const started = answer.body;
      say("Retry started: request " + started.id + " retries " + started.retryOf + ".");
      state.detailId = started.id;
      await refresh();
    } catch (err) {
      handleError(err);
    }
  }

  async function cancelRequest(id, name) {
    const question =
      "Cancel the request for \u201c" + (name || id) + "\u201d?\n" +
      "A creation Graph has already accepted is not undone: the community may still appear.";
    if (!window.confirm(question)) return;
    say("Canceling " + id + "…");
    try {
      const answer = await api("DELETE", "/communities/requests/" + encodeURIComponent(id));
      say(
        answer.status === 200
          ? "Request " + id + " is canceled."
          : "Cancel requested for " + id + "; it ends at its next step."
      );
      await refresh();
    } catch (err) {
      handleError(err);
    }
  }

  async function retryBatch(id) {
    say("Retrying the items of batch " + id + " that did not succeed…");
    try {
      const started = (await api("POST", "/communities/batches/" + encodeURIComponent(id) + "/retry")).body;
      say("Retry started: batch " + started.id + " retries " + started.total + " items of " + started.retryOf + ".");
      await refresh();
    } catch (err) {
      handleError(err);
    }
  }

  async function cancelBatch(id) {
    const question =
      "Cancel batch " + id + "?\nNo more items start and the items in flight are canceled; " +
      "creations Graph has already accepted are not undone.";
    if (!window.confirm(question)) return;
    say("Canceling batch " + id + "…");
    try {
      await api("DELETE", "/communities/batches/" + encodeURIComponent(id));
      say("Cancel requested for batch " + id + ".");
      await refresh();
    } catch (err) {
      handleError(err);
    }
  }

  function showDetail(id) {
    state.detailId = id;
    state.detail = null;
    renderDetail();
    refresh();
  }

  function applyFilters(event) {
    if (event) event.preventDefault();
    state.filters = {
      status: $("filter-status").value,
      displayName: $("filter-name").value.trim(),
      batchId: $("filter-batch").value.trim(),
    };
    state.shown = REQUEST_PAGE;
    refresh();
  }

  function clearFilters() {
    $("filter-status").value = "";
    $("filter-name").value = "";
    $("filter-batch").value = "";
    applyFilters();
  }

  function filterByBatch(id) {
    $("filter-batch").value = id;
    applyFilters();
  }

  // ------------------------------------------------------------------------------------------- rendering

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = String(value);
      else if (name === "onClick") node.addEventListener("click", value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function chip(status) {
    const value = status || "Unknown";
    return el("span", { class: "chip chip-" + value.toLowerCase(), "data-status": value, text: value });
  }

  function button(label, onClick, options) {
    const opts = options || {};
    return el("button", {
      type: "button",
      class: opts.kind || "secondary",
      "aria-label": opts.ariaLabel,
      "data-action": opts.action,
      text: label,
      onClick: onClick,
    });
  }

  function pad(number) {
    return String(number).padStart(2, "0");
  }

  function clock(date) {
    return pad(date.getUTCHours()) + ":" + pad(date.getUTCMinutes()) + ":" + pad(date.getUTCSeconds()) + " UTC";
  }

  function when(iso) {
    if (!iso) return "–";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return iso;
    const day = date.getUTCFullYear() + "-" + pad(date.getUTCMonth() + 1) + "-" + pad(date.getUTCDate());
    return day + " " + pad(date.getUTCHours()) + ":" + pad(date.getUTCMinutes()) + ":" + pad(date.getUTCSeconds());
  }

  function timeEl(iso) {
    return el("time", { datetime: iso || null, text: when(iso) });
  }

  function duration(seconds) {
    if (seconds < 90) return Math.max(1, Math.round(seconds)) + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  function shortId(id) {
    return id && id.length > 16 ? id.slice(0, 14) + "…" : id || "";
  }

  function settledCount(batch) {
    const counts = batch.counts || {};
    return (counts.Succeeded || 0) + (counts.Failed || 0) + (counts.Canceled || 0);
  }

  // ETA from the batch's own pace (items settled per second since it started), as of its last update; before
  // the first item settles, the app's estimate from the Graph budget.
  function estimate(batch) {
    if (batch.status !== "Running") return null;
    const total = batch.total || 0;
    const settled = settledCount(batch);
    const started = Date.parse(batch.createdAt);
    const updated = Date.parse(batch.lastUpdatedAt);
    if (settled > 0 && settled < total && updated > started) {
      const secondsLeft = ((updated - started) / 1000 / settled) * (total - settled);
      return { at: new Date(updated + secondsLeft * 1000), secondsLeft: secondsLeft, basis: "current pace" };
    }
    if (batch.estimatedCompletionAt && updated) {
      const at = new Date(batch.estimatedCompletionAt);
      return { at: at, secondsLeft: (at.getTime() - updated) / 1000, basis: "Graph budget" };
    }
    return null;
  }

  function renderBatches() {
    const body = $("batches").tBodies[0];
    body.replaceChildren();
    for (const batch of state.batches) {
      const total = batch.total || 0;
      const settled = settledCount(batch);
      const counts = batch.counts || {};
      const parts = [];
      if (counts.Running) parts.push(counts.Running + " running");
      if (counts.NotStarted) parts.push(counts.NotStarted + " waiting");
      if (counts.Failed) parts.push(counts.Failed + " failed");
      if (counts.Canceled) parts.push(counts.Canceled + " canceled");
      const bar = el("progress", {
        max: String(Math.max(total, 1)),
        value: String(settled),
        "aria-label": "Batch " + batch.id + ": " + settled + " of " + total + " items settled",
      });
      const eta = estimate(batch);
      const etaCell = eta
        ? el(
            "td",
            { class: "eta" },
            timeEl(eta.at.toISOString()),
            el("span", {
              class: "note",
              text: "about " + duration(Math.max(eta.secondsLeft, 1)) + " left (" + eta.basis + ")",
            })
          )
        : el("td", { class: "eta", text: batch.status === "Running" ? "estimating…" : "finished " + when(batch.lastUpdatedAt) });
      const actions = el("td", { class: "actions" });
      actions.append(
        button("Show requests", () => filterByBatch(batch.id), {
          action: "show-batch",
          ariaLabel: "Show the requests of batch " + batch.id,
        })
      );
      // A finished batch with items that did not succeed, not retried yet (the API answers 409 otherwise).
      if (!["Running", "Succeeded"].includes(batch.status) && !batch.retriedBy) {
        actions.append(
          button("Retry", () => retryBatch(batch.id), {
            kind: "",
            action: "retry-batch",
            ariaLabel: "Retry the items of batch " + batch.id + " that did not succeed",
          })
        );
      }
      if (batch.status === "Running" && !batch.cancelRequested) {
        actions.append(
          button("Cancel", () => cancelBatch(batch.id), {
            kind: "danger",
            action: "cancel-batch",
            ariaLabel: "Cancel batch " + batch.id,
          })
        );
      }
      const idCell = el("td", {}, el("span", { class: "mono", title: batch.id, text: shortId(batch.id) }));
      if (batch.retryOf) idCell.append(el("span", { class: "note", text: "retry of " + shortId(batch.retryOf) }));
      if (batch.retriedBy) idCell.append(el("span", { class: "note", text: "retried by " + shortId(batch.retriedBy) }));
      if (batch.cancelRequested && batch.status === "Running") idCell.append(el("span", { class: "note", text: "cancel requested" }));
      body.append(
        el(
          "tr",
          { "data-id": batch.id, "data-status": batch.status },
          idCell,
          el("td", {}, chip(batch.status)),
          el(
            "td",
            {},
            el(
              "div",
              { class: "progress" },
              bar,
              el("span", { class: "progress-text", text: settled + " / " + total + " done" })
            ),
            parts.length ? el("span", { class: "note", text: parts.join(" · ") }) : null
          ),
          etaCell,
          el("td", {}, timeEl(batch.createdAt)),
          actions
        )
      );
    }
    $("batches-empty").hidden = state.batches.length > 0;
  }

  function renderRequests() {
    const body = $("requests").tBodies[0];
    body.replaceChildren();
    for (const row of state.requests) {
      const name = row.displayName || row.id;
      const nameCell = el(
        "td",
        {},
        el("button", {
          type: "button",
          class: "link",
          "data-action": "details",
          "aria-label": "Details of " + name,
          text: name,
          onClick: () => showDetail(row.id),
        }),
        el("span", { class: "note mono", title: row.id, text: shortId(row.id) })
      );
      if (row.retryOf) nameCell.append(el("span", { class: "note", text: "retry of " + shortId(row.retryOf) }));
      const actions = el("td", { class: "actions" });
      if (RETRYABLE.has(row.status) && !row.retriedBy) {
        actions.append(
          button("Retry", () => retry(row.id), { kind: "", action: "retry", ariaLabel: "Retry " + name })
        );
      } else if (row.retriedBy) {
        actions.append(
          button("Open retry", () => showDetail(row.retriedBy), {
            action: "open-retry",
            ariaLabel: "Open the retry of " + name,
          })
        );
      }
      if (row.status === "Running") {
        actions.append(
          button("Cancel", () => cancelRequest(row.id, row.displayName), {
            kind: "danger",
            action: "cancel",
            ariaLabel: "Cancel " + name,
          })
        );
      }
      body.append(
        el(
          "tr",
          {
            "data-id": row.id,
            "data-status": row.status,
            "data-retry-of": row.retryOf || null,
            class: row.id === state.detailId ? "selected" : null,
          },
          nameCell,
          el("td", {}, chip(row.status)),
          el("td", { class: "nowrap", text: row.phase || "–" }),
          el("td", {}, timeEl(row.createdAt)),
          el("td", {}, timeEl(row.lastUpdatedAt)),
          el("td", { text: row.errorCode || "" }),
          actions
        )
      );
    }
    $("requests-empty").hidden = state.requests.length > 0;
    $("load-more").hidden = !state.nextLink;
  }

  function field(list, label, ...value) {
    list.append(el("dt", { text: label }), el("dd", {}, ...value));
  }

  function renderDetail() {
    const panel = $("detail");
    if (!state.detailId) {
      panel.hidden = true;
      return;
    }
    panel.hidden = false;
    panel.dataset.id = state.detailId;
    const doc = state.detail;
    const fields = $("detail-fields");
    const actions = $("detail-actions");
    const timeline = $("timeline");
    fields.replaceChildren();
    actions.replaceChildren();
    timeline.replaceChildren();
    if (!doc) {
      $("detail-title").textContent = "Loading…";
      $("timeline-empty").hidden = true;
      return;
    }
    if (doc.missing) {
      $("detail-title").textContent = "Not found";
      field(fields, "Request", el("span", { class: "mono", text: doc.id }));
      $("timeline-empty").hidden = true;
      return;
    }
    const request = doc.request || {};
    const name = request.displayName || doc.id;
    $("detail-title").textContent = name;
    panel.dataset.status = doc.status;
    field(fields, "Request", el("span", { class: "mono", text: doc.id }));
    field(fields, "Status", chip(doc.status));
    field(fields, "Phase", doc.phase || "–");
    field(fields, "Created", timeEl(doc.createdAt));
    field(fields, "Last update", timeEl(doc.lastUpdatedAt));
    if (request.privacy) field(fields, "Privacy", request.privacy);
    if (request.ownerCount !== undefined) {
      field(fields, "People", request.ownerCount + " owner(s), " + (request.memberCount || 0) + " member(s)");
    }
    if (doc.operation) {
      const op = doc.operation;
      const next = op.nextCheckAt ? ["; next check ", timeEl(op.nextCheckAt)] : [];
      field(fields, "Graph operation", (op.status || "no status yet") + " after " + op.checks + " check(s)", ...next);
    }
    if (doc.community) {
      field(fields, "Community", el("span", { class: "mono", text: doc.community.id }));
    }
    if (doc.members) {
      const failed = (doc.members.failed || []).length;
      field(fields, "Members", (doc.members.added || []).length + " added, " + failed + " failed");
    }
    if (doc.retryOf) {
      field(
        fields,
        "Retry of",
        el("button", { type: "button", class: "link mono", text: doc.retryOf, onClick: () => showDetail(doc.retryOf) })
      );
    }
    if (doc.possibleDuplicates && doc.possibleDuplicates.length) {
      field(fields, "Possible duplicates", doc.possibleDuplicates.join(", "));
    }
    if (doc.error) {
      const box = el(
        "div",
        { class: "error-box", "data-error-code": doc.error.code },
        el("strong", { text: doc.error.code }),
        el("div", { text: doc.error.message || "" })
      );
      if (doc.error.graphRequestId) {
        box.append(
          el("div", {}, "Graph request-id: ", el("span", { class: "mono graph-request-id", text: doc.error.graphRequestId }))
        );
      }
      field(fields, "Error", box);
    }
    if (doc.callback && doc.callback !== "none") field(fields, "Callback", doc.callback);

    const listed = state.requests.find((row) => row.id === doc.id);
    if (RETRYABLE.has(doc.status)) {
      if (listed && listed.retriedBy) {
        actions.append(button("Open retry", () => showDetail(listed.retriedBy), { action: "open-retry" }));
      } else {
        actions.append(button("Retry", () => retry(doc.id), { kind: "", action: "retry", ariaLabel: "Retry " + name }));
      }
    }
    if (doc.status === "Running") {
      actions.append(
        button("Cancel", () => cancelRequest(doc.id, request.displayName), {
          kind: "danger",
          action: "cancel",
          ariaLabel: "Cancel " + name,
        })
      );
    }

    const entries = doc.timeline || [];
    for (const entry of entries) {
      const extra = [];
      if (entry.graphStatus) extra.push("Graph status: " + entry.graphStatus);
      if (entry.httpStatus) extra.push("HTTP " + entry.httpStatus);
      if (entry.code) extra.push(entry.code);
      if (entry.graphRequestId) extra.push("request-id " + entry.graphRequestId);
      const label = entry.event === "phase" ? entry.phase : (EVENT_LABELS[entry.event] || entry.event);
      timeline.append(
        el(
          "li",
          { class: "event-" + entry.event, "data-event": entry.event },
          timeEl(entry.at),
          el("span", { class: "what", text: entry.event === "phase" ? "Phase: " + label : label }),
          entry.event !== "phase" && entry.phase ? el("span", { class: "extra", text: "in " + entry.phase }) : null,
          extra.length ? el("span", { class: "extra", text: extra.join(" · ") }) : null
        )
      );
    }
    $("timeline-empty").hidden = entries.length > 0;
  }

  function say(text, isError) {
    const message = $("message");
    message.textContent = text;
    message.classList.toggle("error", Boolean(isError));
    message.setAttribute("role", isError ? "alert" : "status");
  }

  // ------------------------------------------------------------------------------------------- start

  takeKeyFromUrl();
  $("key-form").addEventListener("submit", useKey);
  $("forget-key").addEventListener("click", forgetKey);
  $("forget-key").hidden = !storedKey();
  $("refresh-now").addEventListener("click", () => refresh());
  $("filters").addEventListener("submit", applyFilters);
  $("filter-status").addEventListener("change", () => applyFilters());
  $("clear-filters").addEventListener("click", clearFilters);
  $("batch-filters").addEventListener("submit", (event) => event.preventDefault());
  $("batch-status").addEventListener("change", () => {
    state.batchStatus = $("batch-status").value;
    refresh();
  });
  $("load-more").addEventListener("click", loadMore);
  $("detail-close").addEventListener("click", () => {
    state.detailId = null;
    state.detail = null;
    renderDetail();
    renderRequests();
    scheduleRefresh();
  });
  document.addEventListener("visibilitychange", () => {
    // Back to a tab that was hidden: show fresh data at once.
    if (document.visibilityState === "visible" && !state.needsKey) refresh();
  });
  refresh();
})();
