/*
 * demo.js: the Tether demo page. It starts the client (tether.js), shows
 * who is signed in, calls the sample API, drives the dev provider's
 * controls and draws the token lifecycle as a live SVG timeline.
 *
 * The DOM contract the browser tests rely on (ids, data-state, data-kind,
 * window.demoEvents, window.demoReady) is described in the project's
 * docs; keep it stable. No token ever reaches the DOM, the console or
 * storage: tether's events carry only expiry times and reasons.
 *
 * The page's own story (the timeline and the event log, never a token)
 * survives the full-page redirect of Connect and Reconnect, and a reload:
 * it is put in sessionStorage as the page goes away and taken out (and
 * removed) as the next one starts. Disconnect ends the story: nothing is
 * kept after it.
 */
(function () {
  "use strict";

  const MAX_LOG = 500;
  const AUTO_EVERY = 2000;
  const OK_NOTICE_FOR = 6000; // how long "recovered" / "reconnected" stays in the dock
  const HISTORY_KEY = "tether-demo-history"; // sessionStorage: the story, no token
  const HISTORY_MAX_AGE = 30 * 60e3; // an older story is not restored
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
    retries: 0, // 401s answered with a new token and a retry
    refreshes: 0,
    apiOK: 0,
    apiErr: 0,
    inflight: 0,
    autoTimer: 0,
    gen: 0, // counts ended sessions, so that a late session answer is ignored
    ctlGen: 0, // counts controls pressed, so that only the latest reports its call
    keepHistory: true, // false after Disconnect: the story ends there
    leaving: "", // "connect" or "reconnect" while the page goes to the provider
    returned: "", // how this page came back with a story: "connect", "reconnect", "reload"
    okTimer: 0,
  };
  let timeline = null;

  // ---- formatting (shared with timeline.js) ---------------------------

  const { Timeline, clock, span, setText } = window.DemoTimeline;
  const plural = (n, word) => n + " " + word + (n === 1 ? "" : "s");

  // ---- the event log ---------------------------------------------------

  const BADGE = {
    token: "token", retry: "401 → retry", degraded: "degraded", recovered: "recovered",
    reconnect: "reconnect", logout: "logout", "api-ok": "API ok", "api-error": "API error",
    control: "control", error: "error", page: "page",
  };

  // record appends one entry to #events and window.demoEvents. from is a
  // restored entry's original time.
  function record(kind, detail, text, quiet, from) {
    const at = from || Date.now();
    const entry = { kind, at, detail: detail || {}, text };
    if (quiet) entry.quiet = true;
    if (from) entry.restored = true;
    log.push(entry);
    const li = document.createElement("li");
    li.dataset.kind = kind;
    if (quiet) li.className = "quiet";
    if (from) li.classList.add("restored");
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
    // One action, one button: while a reconnect is needed it is the
    // banner's Reconnect, in the dock next to the status.
    ui.connect.hidden = st.connected || !!st.reconnect;
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
    if (r || st.degraded) hideOK();
  }

  // showOK puts a short good-news notice ("recovered", "reconnected") in
  // the dock for a few seconds.
  function showOK(kind, title, detail) {
    clearTimeout(st.okTimer);
    ui.okNotice.dataset.kind = kind;
    ui.okTitle.textContent = title;
    ui.okDetail.textContent = detail;
    ui.okNotice.hidden = false;
    st.okTimer = setTimeout(hideOK, OK_NOTICE_FOR);
  }

  function hideOK() {
    clearTimeout(st.okTimer);
    ui.okNotice.hidden = true;
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
      if (first && st.returned === "reconnect") {
        st.returned = "";
        showOK("reconnected", "Reconnected.", "A new session at the provider; the timeline keeps what happened before.");
      }
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
        st.retries++;
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
      showOK("recovered", "Recovered.", "The provider answers again: a new access token came, nothing was lost.");
    });

    t.addEventListener("logout", () => {
      const now = Date.now();
      forgetHistory(); // Disconnect ends the story
      hideOK();
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

  // callAPI calls the sample API once, shows the answer, and returns what
  // happened: {status, error, retried}.
  async function callAPI() {
    if (!st.tether) return null;
    const retries = st.retries;
    st.inflight++;
    const started = Date.now();
    const wait = timeline.startWait(started);
    const head = document.createElement("p");
    head.className = "result-head";
    const why = document.createElement("p");
    why.className = "result-why";
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
    why.textContent = explain(ui.apiResult.dataset.status, ui.apiResult.dataset.error);
    ui.apiResult.replaceChildren(...(why.textContent ? [head, why, body] : [head, body]));
    return { status: ui.apiResult.dataset.status, error: ui.apiResult.dataset.error || "", retried: st.retries > retries };
  }

  // explain says in a sentence what a failed call means for the person.
  function explain(status, error) {
    if (status === "200") return "";
    if (st.reconnect || error === "TetherReconnectRequired") {
      return st.reconnect ? "The provider no longer accepts this session: Reconnect (at the top) to continue." :
        "Not connected: no call goes out until you connect.";
    }
    if (st.degraded || error === "TetherUnavailable") {
      return "The provider is not answering and no valid token is left: Tether retries by itself (see the notice at the top).";
    }
    if (status === "401") return "The API refused the token, and no new one came.";
    return "";
  }

  // setAuto starts (with a call now, unless called) or stops the call
  // every 2 s.
  function setAuto(on, called) {
    clearInterval(st.autoTimer);
    st.autoTimer = 0;
    ui.apiResult.setAttribute("aria-live", on ? "off" : "polite"); // no announcement every 2 s
    if (!on) return;
    if (!called) callAPI();
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
    "ctl-outage-503": { path: () => "outage?mode=503&seconds=20", flag: "503", outage: true, say: (b) => "The token endpoint answers 503 until " + clock(b.until * 1000) + "." },
    "ctl-outage-timeout": { path: () => "outage?mode=timeout&seconds=20", flag: "timeout", outage: true, say: (b) => "The token endpoint hangs until " + clock(b.until * 1000) + "." },
    "ctl-outage-none": { path: () => "outage?mode=none", flag: "outage off", ends: true, say: () => "The outage is over at the provider." },
  };

  async function control(id) {
    const c = CONTROLS[id];
    // What the control did shows under it, where the person pressed.
    $(id).closest("li").append(ui.ctlStatus);
    const path = c.path();
    if (!path) {
      sayCtl("Connect first: there is nobody to revoke.", true);
      return;
    }
    try {
      const res = await window.fetch(st.config.controls.replace(/\/+$/, "") + "/control/" + path, { method: "POST", mode: "cors" });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(body.message || "the dev provider answered " + res.status);
      const text = c.say(body);
      const now = Date.now();
      timeline.addFlag(c.flag, now);
      if (c.kills && body.expired !== 0 && body.revoked !== 0) {
        // The provider no longer honours the access token; the client
        // learns it from the next API call or refresh.
        timeline.expireTokens(now);
        if (st.tokenExpiresAt > now) st.tokenExpiresAt = now;
      }
      record("control", Object.assign({ control: c.flag }, body), text);
      sayCtl(followUp(c, text));
    } catch (err) {
      sayCtl("The control failed: " + err.message, true);
    }
  }

  // sayCtl shows what a control did under it, scrolled into view if it
  // falls below the fold.
  function sayCtl(text, bad) {
    ui.ctlStatus.textContent = text;
    ui.ctlStatus.classList.toggle("bad", !!bad);
    const r = ui.ctlStatus.getBoundingClientRect();
    if (r.bottom > window.innerHeight) {
      const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      ui.ctlStatus.scrollIntoView({ block: "nearest", behavior: smooth ? "smooth" : "auto" });
    }
  }

  // followUp calls the API right after a control, so that cause and effect
  // are side by side on the timeline, and says next to the controls what to
  // expect, then what the call met.
  function followUp(c, said) {
    if (!st.connected || st.reconnect) return said;
    if (c.ends && st.degraded) {
      // No token to call with: the client is backing off and comes back by
      // itself; a call now would only fail at once.
      const at = st.degraded.at + st.degraded.retryAfter * 1000;
      return said + (at > Date.now() ? " Tether retries by itself in about " + span(at - Date.now()) + "; the top of the page says when it recovered." :
        " Tether retries by itself; the top of the page says when it recovered.");
    }
    const left = st.tokenExpiresAt - Date.now();
    const hint = c.outage && left > 3000
      ? " Calls keep working while the current token is valid (" + span(left) + " more); expire it to see the outage now." : "";
    if (st.inflight > 0) return said + hint; // a call is under way (a hanging one is not piled on)
    const gen = ++st.ctlGen;
    const call = callAPI();
    if (ui.autoCall.checked) setAuto(true, true); // the next automatic call 2 s from now
    call.then((r) => {
      if (r && gen === st.ctlGen) sayCtl(said + " " + outcome(r) + hint);
    });
    return said + " Calling the API…";
  }

  // outcome says in a sentence what the call after a control met.
  function outcome(r) {
    if (r.status === "200") {
      return r.retried ? "The call met a 401; Tether got a new token and retried: 200." : "The call: 200, the token still works.";
    }
    const why = explain(r.status, r.error);
    return (r.status === "error" ? "The call did not go out." : "The call: HTTP " + r.status + ".") + (why ? " " + why : "");
  }

  // ---- the story across page loads ----------------------------------------
  //
  // Connect and Reconnect leave the page for the provider's sign-in; a
  // reload starts it again. What the person saw so far (the timeline's
  // items, the event log, the counters: expiry times, reasons and statuses,
  // never a token) goes to sessionStorage as the page goes away, and the
  // next page takes it out at once: sessionStorage holds it only between
  // the two pages.

  function saveHistory() {
    if (!st.keepHistory || !timeline) return;
    const events = log.filter((e) => !e.quiet).slice(-MAX_LOG);
    const tl = timeline.serialize();
    if (!events.length && !tl.marks.length && !tl.sessions.length) return; // nothing to tell yet
    const h = {
      v: 1, savedAt: Date.now(), via: st.leaving || "reload", events, timeline: tl,
      counts: { refreshes: st.refreshes, apiOK: st.apiOK, apiErr: st.apiErr },
    };
    try {
      sessionStorage.setItem(HISTORY_KEY, JSON.stringify(h));
    } catch {
      // storage full or denied: the next page starts a new story
    }
  }

  function takeHistory() {
    let h = null;
    try {
      h = JSON.parse(sessionStorage.getItem(HISTORY_KEY) || "null");
      sessionStorage.removeItem(HISTORY_KEY);
    } catch {
      return null;
    }
    const fresh = h && h.v === 1 && Date.now() - h.savedAt < HISTORY_MAX_AGE;
    return fresh && Array.isArray(h.events) && h.timeline && h.counts ? h : null;
  }

  function forgetHistory() {
    st.keepHistory = false;
    try {
      sessionStorage.removeItem(HISTORY_KEY);
    } catch {
      // nothing stored
    }
  }

  // restoreHistory puts the earlier story back, and marks where this page
  // took over: a flag on the timeline and an entry in the log.
  function restoreHistory(h) {
    timeline.restore(h.timeline, h.savedAt);
    for (const e of h.events) record(e.kind, e.detail, e.text, false, e.at);
    st.refreshes = h.counts.refreshes || 0;
    st.apiOK = h.counts.apiOK || 0;
    st.apiErr = h.counts.apiErr || 0;
    st.returned = h.via;
    const now = Date.now();
    const what = {
      reconnect: ["reconnected", "Back from the provider's sign-in (Reconnect)"],
      connect: ["signed in", "Back from the provider's sign-in (Connect)"],
    }[h.via] || ["reloaded", "The page was reloaded"];
    timeline.addFlag(what[0], now);
    record("page", { via: h.via, away: now - h.savedAt },
      what[1] + " after " + span(now - h.savedAt) + ": the events before it are kept.");
  }

  // ---- the dock --------------------------------------------------------

  // watchDock shadows the dock once it sticks, and keeps focused elements
  // clear of it when the page scrolls to them.
  function watchDock() {
    const dock = $("dock");
    const top = () => {
      const h = Math.ceil(dock.getBoundingClientRect().height);
      document.documentElement.style.scrollPaddingTop = h + 8 + "px";
    };
    if (typeof ResizeObserver === "function") new ResizeObserver(top).observe(dock);
    top();
    const onScroll = () => dock.classList.toggle("stuck", dock.getBoundingClientRect().top <= 0 && window.scrollY > 0);
    window.addEventListener("scroll", onScroll, { passive: true });
    onScroll();
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
      okNotice: $("recovered-notice"), okTitle: $("recovered-title"), okDetail: $("recovered-detail"),
    });
    timeline = new Timeline($("timeline"));
    timeline.onTick = renderFacts;
    ui.autoCall.checked = false;
    watchDock();
    const earlier = takeHistory();
    try {
      if (earlier) restoreHistory(earlier);
    } catch (err) {
      record("error", { message: err.message }, "The earlier events could not be restored: " + err.message);
    }
    window.addEventListener("pagehide", saveHistory);
    window.addEventListener("pageshow", (e) => {
      if (e.persisted) takeHistory(); // back from the back-forward cache: the page kept its story
    });

    const login = (via) => {
      if (!st.tether) return;
      st.leaving = via;
      saveHistory();
      st.tether.login(location.pathname);
    };
    ui.connect.addEventListener("click", () => login("connect"));
    ui.reconnect.addEventListener("click", () => login("reconnect"));
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
      // Proxy mode (config.mode): the BFF calls the API for the page.
      // live: the BFF's event stream tells the page at once that the
      // session ended elsewhere (the reconnect banner, with no click).
      st.tether = await Tether.start(st.config.mode === "proxy"
        ? { bff: "/bff", mode: "proxy", apis: st.config.apis, live: true }
        : { bff: "/bff", apiOrigins: [st.config.apiOrigin], live: true });
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
