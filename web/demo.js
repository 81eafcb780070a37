/*
 * demo.js: the Tether demo page. It starts the client (tether.js), shows
 * who is signed in, calls the sample API, drives the dev provider's
 * controls and draws the token lifecycle as a live SVG timeline.
 *
 * The DOM contract the browser tests rely on (ids, data-state, data-kind,
 * window.demoEvents, window.demoReady) is described in the project's
 * docs; keep it stable. No token ever reaches the DOM, the console or
 * storage: tether's events carry only expiry times and reasons.
 */
(function () {
  "use strict";

  const MAX_LOG = 500;
  const AUTO_EVERY = 2000;
  const $ = (id) => document.getElementById(id);
  const log = (window.demoEvents = []);

  const RECONNECT = {
    revoked: {
      title: "Your connection to the provider was disconnected",
      detail: "The grant was revoked at the provider, so the BFF deleted this session. Reconnect to continue.",
      status: "Disconnected",
    },
    expired: {
      title: "Your connection to the provider expired",
      detail: "The session reached the end of its lifetime (its refresh token expired). Reconnect to start a new one.",
      status: "Connection expired",
    },
    no_session: {
      title: "You were signed out",
      detail: "The BFF has no session for this browser any more (signed out in another tab, or removed). Reconnect to continue.",
      status: "Signed out",
    },
  };
  const DEGRADED = {
    provider_unavailable: "The provider is not answering.",
    storage_unavailable: "The BFF's session storage is not answering.",
    network: "The BFF cannot be reached.",
  };

  const ui = {};
  const st = {
    config: null,
    tether: null,
    connected: false, // the BFF holds a session for us, as far as we know
    hadSession: false, // we saw one on this page (a no_session reconnect then means "signed out")
    name: "",
    subject: "",
    reconnect: "", // reason, while a reconnect is required
    degraded: null, // {reason, retryAfter, at}
    tokenExpiresAt: 0, // ms
    sessionEndsAt: 0, // ms
    tokens: 0, // tokens in this session
    afterRetry: false, // the next token answers an API's 401
    refreshes: 0,
    apiOK: 0,
    apiErr: 0,
    inflight: 0,
    autoTimer: 0,
    gen: 0, // counts ended sessions, so that a late session answer is ignored
  };
  let timeline = null;

  // ---- formatting ------------------------------------------------------

  const pad = (n) => String(n).padStart(2, "0");
  const clock = (ms) => {
    const d = new Date(ms);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  };
  const span = (ms) => {
    const s = Math.max(0, Math.round(ms / 1000));
    return s < 60 ? s + "\u00a0s" : Math.floor(s / 60) + ":" + pad(s % 60) + "\u00a0min";
  };
  const setText = (e, text) => {
    if (e.textContent !== text) e.textContent = text;
  };
  const plural = (n, word) => n + " " + word + (n === 1 ? "" : "s");

  // ---- the event log ---------------------------------------------------

  const BADGE = {
    token: "token", retry: "401 → retry", degraded: "degraded", recovered: "recovered",
    reconnect: "reconnect", logout: "logout", "api-ok": "API ok", "api-error": "API error",
    control: "control", error: "error",
  };

  // record appends one entry to #events and window.demoEvents.
  function record(kind, detail, text, quiet) {
    const at = Date.now();
    log.push({ kind, at, detail: detail || {} });
    const li = document.createElement("li");
    li.dataset.kind = kind;
    if (quiet) li.className = "quiet";
    const time = document.createElement("time");
    time.dateTime = new Date(at).toISOString();
    time.textContent = clock(at);
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = BADGE[kind] || kind;
    const msg = document.createElement("span");
    msg.className = "msg";
    msg.textContent = text;
    li.append(time, badge, msg);
    ui.events.append(li);
    while (log.length > MAX_LOG) {
      log.shift();
      ui.events.firstElementChild.remove();
    }
  }

  // ---- status, banner, notice -------------------------------------------

  function render() {
    let state = "disconnected";
    let text = "Not connected";
    const who = st.name || st.subject || "you";
    if (st.reconnect) {
      state = "reconnect";
      text = (RECONNECT[st.reconnect] || { status: "Disconnected" }).status + " · reconnect needed";
    } else if (st.degraded) {
      state = "degraded";
      text = (st.connected ? "Connected as " + who : "Not connected") + " · retrying";
    } else if (st.connected) {
      state = "connected";
      text = "Connected as " + who;
    }
    ui.status.dataset.state = state;
    ui.statusText.textContent = text;
    ui.connect.hidden = st.connected;
    ui.connect.classList.toggle("primary", !st.reconnect); // the banner's Reconnect leads
    ui.disconnect.hidden = !st.connected;

    const r = st.reconnect && (RECONNECT[st.reconnect] || {
      title: "Your connection to the provider ended", detail: "Reconnect to continue (" + st.reconnect + ").",
    });
    if (r) {
      ui.bannerTitle.textContent = r.title;
      ui.bannerDetail.textContent = r.detail;
    }
    ui.banner.hidden = !r;
    ui.notice.hidden = !st.degraded;
  }

  // showDegraded fills the notice once per event: it is a live region, so
  // no ticking countdown in it.
  function showDegraded(reason, retryAfter) {
    ui.noticeTitle.textContent = DEGRADED[reason] || "Tokens cannot be refreshed right now.";
    const usable = st.tether.state().connected;
    ui.noticeDetail.textContent = "Your session is kept" +
      (usable ? " and the current access token stays in use. " : "; API calls wait for a new token. ") +
      (retryAfter > 0 ? "Tether retries in " + span(retryAfter * 1000) : "Tether retries shortly") + " (" + reason + ").";
  }

  function renderFacts(now) {
    if (st.tokenExpiresAt && st.connected) {
      const left = st.tokenExpiresAt - now;
      setText(ui.factToken, left > 0 ? "expires in " + span(left) : "expired " + span(-left) + " ago");
    } else {
      setText(ui.factToken, st.connected && st.tokens ? "no expiry given" : "none");
    }
    if (st.connected && st.sessionEndsAt) {
      setText(ui.factSession, "ends in " + span(st.sessionEndsAt - now));
    } else {
      setText(ui.factSession, st.connected ? "active" : "none");
    }
    setText(ui.factRefreshes, String(st.refreshes));
    setText(ui.factAPI, st.apiOK + " ok · " + st.apiErr + " failed");
  }

  // ---- session ---------------------------------------------------------

  function applySession(s) {
    if (!s || !s.authenticated) return false;
    st.name = s.name || "";
    st.subject = s.subject || "";
    st.sessionEndsAt = s.refresh_expires_at ? s.refresh_expires_at * 1000 : 0;
    if (st.reconnect) return true; // the token request said otherwise; it wins
    st.connected = st.hadSession = true;
    timeline.startSession(Date.now(), st.sessionEndsAt);
    return true;
  }

  async function refreshSession() {
    const gen = st.gen;
    try {
      const s = await st.tether.session();
      if (gen === st.gen && applySession(s)) render(); // not if the session ended meanwhile
    } catch {
      // the next token event tries again
    }
  }

  // endSession closes the bars of a session that is over.
  function endSession(now) {
    if (ui.autoCall.checked) {
      ui.autoCall.checked = false; // every call would fail at once
      setAuto(false);
    }
    st.gen++;
    st.connected = false;
    st.degraded = null;
    st.tokenExpiresAt = 0;
    st.tokens = 0;
    st.afterRetry = false;
    timeline.endSession(now);
    timeline.killToken(now);
    timeline.endOutage(now);
  }

  // ---- tether events ---------------------------------------------------

  function listen(t) {
    t.addEventListener("token", (e) => {
      const now = Date.now();
      const exp = e.detail.expiresAt ? e.detail.expiresAt * 1000 : 0;
      const first = st.tokens === 0;
      const retry = st.afterRetry;
      st.tokens++;
      st.afterRetry = false;
      st.tokenExpiresAt = exp;
      if (!first) st.refreshes++;
      if (!st.connected && !st.reconnect) {
        st.connected = st.hadSession = true;
        timeline.startSession(now, st.sessionEndsAt);
      }
      st.degraded = null;
      timeline.endOutage(now);
      timeline.addToken(now, exp);
      if (!first && !retry) timeline.addMark("refresh", now, "Refresh: new access token");
      const life = exp ? " · expires " + clock(exp) + " (in " + span(exp - now) + ")" : " · no expiry given";
      record("token", { expiresAt: e.detail.expiresAt },
        (first ? "Access token" : retry ? "New access token after the 401" : "Refreshed: new access token") + life);
      render();
      refreshSession();
    });

    t.addEventListener("reconnect", (e) => {
      const now = Date.now();
      const raw = e.detail.reason || "";
      // A session whose known end has passed may be reported as gone
      // (no_session) rather than expired: say what happened.
      const reason = raw === "no_session" && st.sessionEndsAt && now >= st.sessionEndsAt - 2000 ? "expired" : raw;
      const r = RECONNECT[reason];
      // A no_session on a page that never had one is just "not signed in".
      const shown = reason !== "no_session" || st.hadSession || st.connected;
      record("reconnect", reason === raw ? { reason } : { reason: raw, shownAs: reason }, shown
        ? (r ? r.title : "Reconnect required") + " (" + reason + ")"
        : "No session yet (no_session): press Connect", !shown);
      if (!shown) {
        render();
        return;
      }
      endSession(now);
      st.reconnect = reason;
      timeline.addMark("reconnect", now, "Reconnect required: " + reason);
      render();
    });

    t.addEventListener("degraded", (e) => {
      const now = Date.now();
      const reason = e.detail.reason || "unavailable";
      const retryAfter = Number(e.detail.retryAfter) || 0;
      st.degraded = { reason, retryAfter, at: now };
      showDegraded(reason, retryAfter);
      timeline.startOutage(now);
      timeline.addMark("degraded", now, "Degraded: " + reason + ", retry in " + retryAfter + " s");
      record("degraded", { reason, retryAfter },
        "Token refresh failed (" + reason + "): the session is kept, retrying in " + span(retryAfter * 1000));
      render();
    });

    t.addEventListener("recovered", (e) => {
      const now = Date.now();
      const reason = e.detail.reason || "";
      if (reason === "rejected") {
        st.afterRetry = true;
        timeline.addMark("retry", now, "The API answered 401: new token, call retried");
        record("retry", { event: "recovered", reason },
          "The API answered 401: Tether got a new token and retries the call once");
        return;
      }
      st.degraded = null;
      timeline.endOutage(now);
      timeline.addMark("recovered", now, "Recovered: the outage is over");
      record("recovered", { reason }, "Outage over: tokens refresh again");
      render();
    });

    t.addEventListener("logout", () => {
      const now = Date.now();
      endSession(now);
      st.reconnect = "";
      st.name = st.subject = "";
      st.sessionEndsAt = 0;
      timeline.addMark("logout", now, "Logged out");
      record("logout", {}, "Signed out: the BFF revoked the grant and deleted the session");
      render();
    });
  }

  // ---- the API ---------------------------------------------------------

  async function callAPI() {
    if (!st.tether) return;
    st.inflight++;
    const started = Date.now();
    const wait = timeline.startWait(started);
    const head = document.createElement("p");
    head.className = "result-head";
    const body = document.createElement("pre");
    try {
      const res = await st.tether.fetch(st.config.api, { cache: "no-store" });
      const text = await res.text();
      let pretty = text;
      try {
        pretty = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        // not JSON: show it as it came
      }
      const ms = Date.now() - started;
      const ok = res.ok;
      head.textContent = "HTTP " + res.status + (res.statusText ? " " + res.statusText : "") + " · " + clock(started) + " · " + ms + " ms";
      body.textContent = pretty || "(empty body)";
      ui.apiResult.dataset.status = String(res.status);
      delete ui.apiResult.dataset.error;
      ok ? st.apiOK++ : st.apiErr++;
      timeline.addMark(ok ? "api-ok" : "api-error", Date.now(), "API call: HTTP " + res.status);
      record(ok ? "api-ok" : "api-error", { status: res.status, ms }, "GET /api/me answered " + res.status + " in " + ms + " ms");
    } catch (err) {
      const name = (err && err.name) || "Error";
      const reason = err && err.reason ? " (" + err.reason + ")" : "";
      head.textContent = name + reason + " · " + clock(started);
      body.textContent = (err && err.message) || String(err);
      ui.apiResult.dataset.status = "error";
      ui.apiResult.dataset.error = name;
      st.apiErr++;
      timeline.addMark("api-error", Date.now(), "API call failed: " + name);
      record("api-error", { error: name, reason: err && err.reason, retryAfter: err && err.retryAfter },
        "The call did not go out: " + name + reason);
    } finally {
      st.inflight--;
      timeline.endWait(wait, Date.now());
    }
    ui.apiResult.classList.toggle("bad", ui.apiResult.dataset.status !== "200");
    ui.apiResult.replaceChildren(head, body);
  }

  function setAuto(on) {
    clearInterval(st.autoTimer);
    st.autoTimer = 0;
    ui.apiResult.setAttribute("aria-live", on ? "off" : "polite"); // no announcement every 2 s
    if (!on) return;
    callAPI();
    st.autoTimer = setInterval(() => {
      if (st.inflight === 0) callAPI(); // a hanging call is not piled on
    }, AUTO_EVERY);
  }

  // ---- dev provider controls -------------------------------------------

  const CONTROLS = {
    "ctl-expire": { path: () => "expire", flag: "expire", kills: true, say: (b) => "Expired " + plural(b.expired || 0, "access token") + " at the provider." },
    "ctl-revoke": {
      path: () => st.subject ? "revoke?subject=" + encodeURIComponent(st.subject) : "",
      flag: "revoke", kills: true, say: (b) => "Revoked " + plural(b.revoked || 0, "grant") + " of " + st.subject + ".",
    },
    "ctl-outage-503": { path: () => "outage?mode=503&seconds=20", flag: "503", say: (b) => "The token endpoint answers 503 until " + clock(b.until * 1000) + "." },
    "ctl-outage-timeout": { path: () => "outage?mode=timeout&seconds=20", flag: "timeout", say: (b) => "The token endpoint hangs until " + clock(b.until * 1000) + "." },
    "ctl-outage-none": { path: () => "outage?mode=none", flag: "outage off", say: () => "The outage is over at the provider." },
  };

  async function control(id) {
    const c = CONTROLS[id];
    const path = c.path();
    if (!path) {
      ui.ctlStatus.textContent = "Connect first: there is nobody to revoke.";
      ui.ctlStatus.classList.add("bad");
      return;
    }
    try {
      const res = await window.fetch(st.config.controls.replace(/\/+$/, "") + "/control/" + path, { method: "POST", mode: "cors" });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(body.message || "the dev provider answered " + res.status);
      const text = c.say(body);
      ui.ctlStatus.textContent = text;
      ui.ctlStatus.classList.remove("bad");
      const now = Date.now();
      timeline.addFlag(c.flag, now);
      if (c.kills && body.expired !== 0 && body.revoked !== 0) {
        // The provider no longer honours the access token; the client
        // learns it from the next API call or refresh.
        timeline.expireTokens(now);
        if (st.tokenExpiresAt > now) st.tokenExpiresAt = now;
      }
      record("control", Object.assign({ control: c.flag }, body), text);
    } catch (err) {
      ui.ctlStatus.textContent = "The control failed: " + err.message;
      ui.ctlStatus.classList.add("bad");
    }
  }

  // ---- the timeline ----------------------------------------------------
  //
  // One SVG, redrawn about ten times a second: the x axis is wall-clock
  // time, from a few minutes ago to a little ahead of now (the part of the
  // current token's life still to come). The viewBox is as wide as the
  // element in CSS pixels, so text keeps its size on a phone.

  const NS = "http://www.w3.org/2000/svg";
  const Y = {
    flag: 12, sessionLabel: 31, session: 37, sessionH: 18, tokenLabel: 76, token: [82, 99], tokenH: 13,
    eventsLabel: 133, rowA: 149, rowB: 169, apiLabel: 195, api: 201, apiH: 18,
    top: 19, bottom: 223, axis: 229, axisLabel: 245, H: 252,
  };
  const PAD = 10;

  function svgEl(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.append(e);
    return e;
  }
  // drop removes an element (if drawn) and tells filter to forget its item.
  function drop(e) {
    if (e) e.remove();
    return false;
  }
  function put(e, attrs) {
    for (const k in attrs) {
      const v = typeof attrs[k] === "number" ? attrs[k].toFixed(1) : attrs[k];
      if (e.getAttribute(k) !== v) e.setAttribute(k, v);
    }
  }

  const SYMBOL = {
    refresh: (g) => svgEl("circle", { r: 6, cy: Y.rowA }, g),
    retry: (g) => svgEl("path", { d: `M0 ${Y.rowA - 7.5}l7.5 7.5l-7.5 7.5l-7.5-7.5z` }, g),
    degraded: (g) => svgEl("path", { d: `M0 ${Y.rowB - 7.5}l7.5 13h-15z` }, g),
    recovered: (g) => svgEl("circle", { r: 5, cy: Y.rowB }, g),
    reconnect: (g) => svgEl("rect", { x: -6, y: Y.rowB - 6, width: 12, height: 12, rx: 2 }, g),
    logout: (g) => svgEl("rect", { x: -6, y: Y.rowB - 6, width: 12, height: 12, rx: 6 }, g),
    "api-ok": (g) => svgEl("line", { y1: Y.api + 3, y2: Y.api + Y.apiH - 3 }, g),
    "api-error": (g) => svgEl("line", { y1: Y.api - 1, y2: Y.api + Y.apiH + 1 }, g),
  };

  class Timeline {
    constructor(svg) {
      this.svg = svg;
      this.W = 1000;
      this.origin = 0; // the first item: the axis covers at least this much past
      this.sessions = [];
      this.tokens = [];
      this.outages = [];
      this.marks = [];
      this.flags = [];
      this.waits = [];
      this.lanes = 0;
      this.onTick = null;
      const defs = svgEl("defs", {}, svg);
      this.clip = svgEl("rect", { x: PAD, y: 0, height: Y.H, width: 0 }, svgEl("clipPath", { id: "tl-plot" }, defs));
      this.tracks = svgEl("g", { class: "tl-tracks" }, svg);
      this.future = svgEl("rect", { class: "tl-future", y: Y.top, height: Y.bottom - Y.top }, svg);
      const plot = svgEl("g", { "clip-path": "url(#tl-plot)" }, svg);
      this.bandLayer = svgEl("g", {}, plot);
      this.barLayer = svgEl("g", {}, plot);
      this.flagLayer = svgEl("g", {}, plot);
      this.markLayer = svgEl("g", {}, plot);
      this.labels = svgEl("g", { class: "tl-label" }, svg);
      this.axis = svgEl("g", { class: "tl-axis" }, svg);
      this.axisLine = svgEl("line", { y1: Y.axis, y2: Y.axis }, this.axis);
      this.ticks = [];
      this.now = svgEl("g", { class: "tl-now" }, svg);
      this.nowLine = svgEl("line", { y1: Y.top - 4, y2: Y.axis + 4 }, this.now);
      this.nowText = svgEl("text", { y: Y.axisLabel, "text-anchor": "middle" }, this.now);
      this.nowText.textContent = "now";
      this.empty = svgEl("text", { class: "tl-empty", y: 112, "text-anchor": "middle" }, svg);
      this.empty.textContent = "Connect to see the token lifecycle";
      this.layout(svg.parentElement.clientWidth || 1000);
      if (typeof ResizeObserver === "function") {
        new ResizeObserver((entries) => this.layout(entries[0].contentRect.width)).observe(svg.parentElement);
      }
      let last = 0;
      const frame = (ts) => {
        if (ts - last >= 100) {
          last = ts;
          const now = Date.now();
          this.draw(now);
          if (this.onTick) this.onTick(now);
        }
        requestAnimationFrame(frame);
      };
      requestAnimationFrame(frame);
    }

    // layout sizes the drawing to w CSS pixels: the lanes and their labels.
    layout(w) {
      const W = Math.max(280, Math.round(w));
      if (W === this.W && this.tracks.firstChild) return;
      this.W = W;
      this.svg.setAttribute("viewBox", `0 0 ${W} ${Y.H}`);
      put(this.clip, { width: W - 2 * PAD });
      this.tracks.replaceChildren();
      this.labels.replaceChildren();
      const narrow = W < 600;
      const lanes = [
        [Y.sessionLabel, Y.session, Y.sessionH, narrow ? "Session (refresh token, in the BFF)" : "Session: the refresh token, kept by the BFF"],
        [Y.tokenLabel, Y.token[0], Y.token[1] + Y.tokenH - Y.token[0], narrow ? "Access tokens (in the browser)" : "Access tokens, held in the browser's memory"],
        [Y.eventsLabel, Y.rowA - 9, Y.rowB - Y.rowA + 18, narrow ? "Refreshes and incidents" : "Refreshes, retries, outages, reconnects"],
        [Y.apiLabel, Y.api, Y.apiH, "API calls"],
      ];
      for (const [ly, y, h, text] of lanes) {
        svgEl("rect", { x: PAD, y, width: W - 2 * PAD, height: h, rx: 3 }, this.tracks);
        svgEl("text", { x: PAD + 2, y: ly }, this.labels).textContent = text;
      }
      put(this.axisLine, { x1: PAD, x2: W - PAD });
      put(this.empty, { x: W / 2 });
      this.draw(Date.now());
    }

    begin(at) {
      if (!this.origin) this.origin = at;
    }

    startSession(at, expiresAt) {
      this.begin(at);
      const open = this.sessions.find((s) => !s.endedAt);
      if (open) {
        if (expiresAt) open.expiresAt = expiresAt;
      } else {
        this.sessions.push({ start: at, expiresAt });
      }
      this.draw(Date.now());
    }

    endSession(at) {
      for (const s of this.sessions) if (!s.endedAt) s.endedAt = at;
      this.draw(Date.now());
    }

    addToken(at, expires) {
      this.begin(at);
      for (const t of this.tokens) if (!t.endedAt) t.endedAt = at;
      this.tokens.push({ issued: at, expires, lane: this.lanes++ % 2 });
      this.draw(Date.now());
    }

    // expireTokens cuts the life of every live token at the provider's
    // word, before the client finds out.
    expireTokens(at) {
      for (const t of this.tokens) if (!t.killedAt && (!t.expires || t.expires > at)) t.expires = at;
      this.draw(Date.now());
    }

    killToken(at) {
      for (const t of this.tokens) {
        if (!t.endedAt) t.endedAt = at;
        if (!t.killedAt && (!t.expires || t.expires > at)) t.killedAt = at;
      }
      this.draw(Date.now());
    }

    startOutage(at) {
      this.begin(at);
      if (!this.outages.some((o) => !o.end)) this.outages.push({ start: at });
    }

    endOutage(at) {
      for (const o of this.outages) if (!o.end) o.end = at;
    }

    addMark(kind, at, title) {
      this.begin(at);
      const g = svgEl("g", { class: "mark", "data-kind": kind }, this.markLayer);
      if (!kind.startsWith("api-")) svgEl("line", { class: "tl-guide", y1: Y.top, y2: Y.bottom }, g);
      SYMBOL[kind](g);
      svgEl("title", {}, g).textContent = title + " · " + clock(at);
      this.marks.push({ at, g });
      this.draw(Date.now());
    }

    // startWait draws an API call that takes a while; endWait ends it.
    startWait(at) {
      const w = { start: at };
      this.waits.push(w);
      return w;
    }

    endWait(w, at) {
      w.end = at;
    }

    addFlag(label, at) {
      this.begin(at);
      const g = svgEl("g", { class: "ctl-flag" }, this.flagLayer);
      svgEl("line", { y1: Y.top - 3, y2: Y.bottom }, g);
      const text = svgEl("text", { x: 3, y: Y.flag }, g);
      text.textContent = label;
      this.flags.push({ at, g, text });
      this.draw(Date.now());
    }

    draw(now) {
      const W = this.W;
      const L = PAD;
      const R = W - PAD;
      const maxPast = W < 600 ? 120e3 : 240e3;
      const past = Math.min(maxPast, Math.max(60e3, this.origin ? now - this.origin + 15e3 : 0));
      const t0 = now - past;
      const t1 = now + Math.max(20e3, past / 3);
      const x = (t) => L + ((t - t0) / (t1 - t0)) * (R - L);
      const cx = (t) => Math.max(L - 4, Math.min(R + 4, x(t)));
      const bar = (e, from, to, y, h) => put(e, { x: cx(from), y, width: Math.max(0, cx(to) - cx(from)), height: h });
      const xNow = x(now);

      put(this.future, { x: xNow, width: Math.max(0, R - xNow) });
      put(this.nowLine, { x1: xNow, x2: xNow });
      put(this.nowText, { x: xNow });
      this.empty.style.display = this.sessions.length || this.tokens.length ? "none" : "";

      this.sessions = this.sessions.filter((s) => {
        const end = s.endedAt || s.expiresAt || t1 + 60e3;
        if (s.endedAt && end < t0) return drop(s.g);
        if (!s.g) {
          s.g = svgEl("g", { class: "session-bar" }, this.barLayer);
          s.life = svgEl("rect", { class: "life", rx: 3 }, s.g);
          s.used = svgEl("rect", { class: "used", rx: 3 }, s.g);
          s.cap = svgEl("rect", { class: "cap", width: 3, y: Y.session - 3, height: Y.sessionH + 6 }, s.g);
          s.text = svgEl("text", { y: Y.session + Y.sessionH / 2 + 4, "text-anchor": "end" }, s.g);
        }
        bar(s.life, s.start, end, Y.session, Y.sessionH);
        bar(s.used, s.start, Math.min(s.endedAt || now, end), Y.session, Y.sessionH);
        s.cap.style.display = s.endedAt ? "" : "none";
        if (s.endedAt) put(s.cap, { x: cx(s.endedAt) - 1.5 });
        s.g.dataset.state = s.endedAt ? "ended" : "open";
        // "ends in" goes in the part still to come, when it fits there.
        const label = !s.endedAt && s.expiresAt ? "ends in " + span(s.expiresAt - now) : "";
        const right = Math.min(cx(end), R);
        setText(s.text, label && right - Math.max(xNow, cx(s.start)) > label.length * 6.6 + 12 ? label : "");
        put(s.text, { x: right - 6 });
        return true;
      });

      this.tokens = this.tokens.filter((t) => {
        const lifeEnd = t.killedAt || t.expires || t.endedAt || now;
        const useEnd = Math.min(t.endedAt || now, lifeEnd);
        if (t.endedAt && lifeEnd < t0) return drop(t.g);
        if (!t.g) {
          t.g = svgEl("g", { class: "token-bar" }, this.barLayer);
          t.life = svgEl("rect", { class: "life", rx: 2 }, t.g);
          t.used = svgEl("rect", { class: "used", rx: 2 }, t.g);
          svgEl("title", {}, t.g).textContent = "Access token issued " + clock(t.issued) +
            (t.expires ? ", expires " + clock(t.expires) : "");
        }
        const y = Y.token[t.lane];
        bar(t.life, t.issued, lifeEnd, y, Y.tokenH);
        bar(t.used, t.issued, useEnd, y, Y.tokenH);
        t.g.dataset.state = t.killedAt ? "ended" : t.endedAt ? "replaced" : "current";
        return true;
      });

      this.outages = this.outages.filter((o) => {
        if (o.end && o.end < t0) return drop(o.g);
        if (!o.g) o.g = svgEl("rect", { class: "outage-band", y: Y.top, height: Y.bottom - Y.top }, this.bandLayer);
        bar(o.g, o.start, o.end || now, Y.top, Y.bottom - Y.top);
        return true;
      });

      this.waits = this.waits.filter((w) => {
        const end = w.end || now;
        if (w.end && end < t0) return drop(w.g);
        if (end - w.start < 400) return !w.end;
        if (!w.g) w.g = svgEl("rect", { class: "api-wait", rx: 2 }, this.markLayer);
        bar(w.g, w.start, end, Y.api + Y.apiH / 2 - 2, 4);
        return true;
      });

      for (const list of [this.marks, this.flags]) {
        let gone = 0;
        while (gone < list.length && list[gone].at < t0 - 30e3) list[gone++].g.remove();
        list.splice(0, gone);
        for (const m of list) put(m.g, { transform: `translate(${x(m.at).toFixed(1)} 0)` });
      }
      // Flag labels that would overlap slide right; their lines stay put.
      let free = -Infinity;
      for (const f of this.flags) {
        const fx = x(f.at);
        f.w = f.w || f.text.getComputedTextLength() || f.text.textContent.length * 7;
        const lx = Math.min(Math.max(fx + 3, free + 8), R - f.w);
        put(f.text, { x: lx - fx });
        free = lx + f.w;
      }

      // Wall-clock ticks, at least 72 px apart; none too close to "now".
      const steps = [5, 10, 15, 30, 60, 120, 300];
      const perSec = (R - L) / ((t1 - t0) / 1000);
      const step = (steps.find((s) => s * perSec >= 72) || 600) * 1000;
      let i = 0;
      for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
        const tx = x(t);
        if (tx < L + 26 || tx > R - 26 || Math.abs(tx - xNow) < 34) continue;
        if (!this.ticks[i]) {
          const g = svgEl("g", {}, this.axis);
          svgEl("line", { y1: Y.axis, y2: Y.axis + 4 }, g);
          svgEl("text", { y: Y.axisLabel, "text-anchor": "middle" }, g);
          this.ticks[i] = g;
        }
        const g = this.ticks[i++];
        g.style.display = "";
        put(g, { transform: `translate(${tx.toFixed(1)} 0)` });
        const label = clock(t);
        if (g.lastChild.textContent !== label) g.lastChild.textContent = label;
      }
      for (; i < this.ticks.length; i++) this.ticks[i].style.display = "none";
    }
  }

  // ---- start -----------------------------------------------------------

  function fail(text) {
    ui.status.dataset.state = "disconnected";
    ui.statusText.textContent = text;
    record("error", {}, text);
  }

  async function init() {
    for (const id of ["status", "connect", "disconnect", "call-api", "auto-call", "api-result", "events",
      "reconnect-banner", "reconnect", "degraded-notice", "ctl-status"]) {
      ui[id.replace(/-(\w)/g, (_, c) => c.toUpperCase())] = $(id);
    }
    Object.assign(ui, {
      statusText: $("status-text"), banner: $("reconnect-banner"), bannerTitle: $("reconnect-title"),
      bannerDetail: $("reconnect-detail"), notice: $("degraded-notice"), noticeDetail: $("degraded-detail"),
      noticeTitle: $("degraded-title"), factToken: $("fact-token"), factSession: $("fact-session"),
      factRefreshes: $("fact-refreshes"), factAPI: $("fact-api"),
    });
    timeline = new Timeline($("timeline"));
    timeline.onTick = renderFacts;
    ui.autoCall.checked = false;

    const login = () => st.tether && st.tether.login(location.pathname);
    ui.connect.addEventListener("click", login);
    ui.reconnect.addEventListener("click", login);
    ui.disconnect.addEventListener("click", async () => {
      if (!st.tether) return;
      ui.disconnect.disabled = true;
      try {
        await st.tether.logout();
      } catch (err) {
        record("error", { message: err.message }, "Sign-out failed: " + err.message);
      } finally {
        ui.disconnect.disabled = false;
      }
    });
    ui.callApi.addEventListener("click", callAPI);
    ui.autoCall.addEventListener("change", () => setAuto(ui.autoCall.checked));
    for (const id of Object.keys(CONTROLS)) $(id).addEventListener("click", () => control(id));

    try {
      const res = await fetch("/demo/config.json", { cache: "no-cache" });
      if (!res.ok) throw new Error("answered " + res.status);
      st.config = await res.json();
    } catch (err) {
      fail("Could not load /demo/config.json: " + err.message);
      return;
    }
    try {
      st.tether = await Tether.start({ bff: "/bff", apiOrigins: [st.config.apiOrigin] });
    } catch (err) {
      fail("The Tether client did not start: " + err.message);
      return;
    }
    listen(st.tether); // before anything awaits: the first token event comes next
    try {
      applySession(await st.tether.session());
    } catch (err) {
      record("error", { message: err.message }, "Could not read the session: " + err.message);
    }
    render();
    window.tether = st.tether;
    window.demoReady = true;
  }

  document.addEventListener("DOMContentLoaded", init);
})();
