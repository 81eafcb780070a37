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

  // ---- formatting (shared with timeline.js) ---------------------------

  const { Timeline, clock, span, setText } = window.DemoTimeline;
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
