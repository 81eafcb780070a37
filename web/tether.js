/*
 * tether.js — the browser side of Tether: loads the WebAssembly client and
 * gives the page a fetch that carries the access token to its API origins.
 *
 *   <script src="/dist/wasm_exec.js"></script>  <!-- from the Go that built the wasm -->
 *   <script src="/tether.js" data-wasm="{{TETHER_WASM}}"></script>
 *   <script type="module" src="/app.js"></script>
 *
 *   // app.js
 *   const tether = await Tether.start({
 *     bff: "/bff",                          // the BFF's base path (same origin)
 *     apiOrigins: ["https://api.example"],  // only these origins get the token
 *   });
 *   tether.addEventListener("reconnect", (e) => showLogin(e.detail.reason));
 *   const res = await tether.fetch("https://api.example/me");
 *
 * The WebAssembly binary's URL is options.wasm, else the data-wasm
 * attribute of tether.js's script tag (bff/assets fills {{TETHER_WASM}} in
 * the HTML it serves with the content-hashed name), else the "wasm" member
 * of dist/manifest.json next to tether.js.
 *
 * Tether.start(options) -> Promise<tether>; a second call returns the same one.
 *
 * tether.fetch(input, init) has window.fetch's contract. It reads the URL
 * once (a Request's own, else String(input), resolved against the page),
 * decides on that URL and fetches that URL: an object that answers
 * differently the second time cannot send the token elsewhere. For an API
 * origin it adds "Authorization: Bearer <token>" (to a copy of the
 * headers). The WebAssembly client decides everything: which origins are
 * API origins (asked once per origin and remembered, for up to 256
 * origins), and which token may be used until when. It pushes its usable
 * token, and the moment it stops being usable, whenever they change (before
 * the event of the same change: after "reconnect" or "logout" no call
 * carries the old one); tether.js keeps that copy in a private field of the
 * Tether object and sends it while Date.now() is before that moment,
 * without calling into WebAssembly. Otherwise the call waits for the
 * client's token: while a refresh is on its way (this tab's or another
 * tab's), that is the new token, or the old one after at most 2 s. On a
 * 401 it asks for a new token once and retries once if the body can be
 * sent again (none, string, URLSearchParams, Blob, ArrayBuffer, a view,
 * FormData, an unused Request; not a ReadableStream); otherwise, or if no
 * new token comes, it returns the 401. Other origins are fetched untouched.
 * After a reconnect, API calls reject at once with an Error named
 * "TetherReconnectRequired" (error.reason); while the BFF is unavailable
 * and no token is left, with "TetherUnavailable" (error.retryAfter, s).
 *
 * At start it asks GET /bff/session (alongside the WebAssembly download)
 * and, when there is no session, asks for no token: the page gets
 * "reconnect" with reason "no_session" and the console stays clean.
 *
 * tether.state()        -> {connected, expiresAt, degraded, reason}
 * tether.login(path?)   navigates to the BFF's login, back to path (default: here)
 * tether.logout()       -> Promise; POST /bff/logout, then a "logout" event
 * tether.session()      -> Promise<object>, the BFF's GET /bff/session
 * tether.restart()      forgets a reconnect and asks for a token again
 *
 * Events (CustomEvent; detail never holds a token):
 *   token     {expiresAt}            a new token (Unix seconds, 0 = unknown)
 *   reconnect {reason}               the grant is gone: no_session, revoked, expired
 *   degraded  {reason, retryAfter}   the BFF or provider failed; retrying in retryAfter s
 *   recovered {reason}               "degraded": the outage is over;
 *                                    "rejected": a new token after an API's 401
 *   logout    {}
 *
 * The token is held in memory only: by the WebAssembly client and in a
 * private field of the Tether object (#token), never on window, in an
 * event, in the DOM or on the tabs' channel. Nothing is written to
 * localStorage, sessionStorage, IndexedDB or cookies.
 * The tabs of an origin take turns asking for a token (navigator.locks
 * "tether-token") and tell each other, on BroadcastChannel "tether", that
 * a refresh is starting and how it ended, never the token: any script of
 * the origin can listen there (see class Tabs). A refresh request leaves
 * once the other tabs have answered that their new calls wait for it (at
 * most 100 ms); a tab that hears "refreshed" asks the BFF for the new
 * token, which it answers from its vault, so N tabs cost one refresh and N
 * /bff/token requests.
 *
 * Load wasm_exec.js and tether.js before any other script: tether.js keeps
 * the built-ins it uses (fetch, URL, Request, Headers, BroadcastChannel,
 * Go) as they are when it loads. A script that runs earlier can replace
 * them, and no script on the page can be kept from asking POST /bff/token
 * itself (see the README's security model).
 *
 * Live: Tether.start({ live: true }) holds an EventSource on <bff>/events
 * while the session lasts, and the BFF's session_ended there raises
 * "reconnect" at once (see "the live event stream" below).
 *
 * options.credentials: "same-origin" (the default) or "include", the
 * credentials mode of every request to the BFF. "include" is for a BFF on
 * another origin than the script's: an extension's service worker, with
 * bff an absolute URL (see the README, "In a browser extension"). In a
 * worker there is no document: no data-wasm (pass options.wasm, or keep
 * dist/manifest.json next to the worker's script), no visibilitychange,
 * and tether.login() cannot navigate (open the BFF's login in a tab, then
 * call tether.restart()).
 *
 * Proxy mode: Tether.start({ mode: "proxy", apis: { name: "https://api..." } })
 * sends calls under those base URLs to the BFF (<bff>/api/<name>/...), which
 * adds the token: the page holds none and loads no WebAssembly. See
 * "proxy mode" below.
 */
(function (global) {
  "use strict";

  // The built-ins tether.fetch decides with, as they are now: a script
  // that redefines URL.prototype.origin, Request.prototype.url or
  // Headers.prototype later changes nothing here.
  const { apply, defineProperty, deleteProperty, getOwnPropertyDescriptor } = Reflect;
  const getter = (C, name) => getOwnPropertyDescriptor(C.prototype, name).get;
  const nativeFetch = global.fetch.bind(global);
  const NativeURL = global.URL, NativeRequest = global.Request, NativeHeaders = global.Headers;
  const urlHref = getter(NativeURL, "href"), urlOrigin = getter(NativeURL, "origin");
  const requestURL = getter(NativeRequest, "url"), requestHeaders = getter(NativeRequest, "headers");
  const requestBody = getter(NativeRequest, "body"), requestBodyUsed = getter(NativeRequest, "bodyUsed");
  const requestClone = NativeRequest.prototype.clone;
  const Channel = global.BroadcastChannel;
  const NativeGo = global.Go;
  const instantiateStreaming = WebAssembly.instantiateStreaming.bind(WebAssembly);
  const doc = global.document;

  // loginURL is the BFF's login, back to returnTo (default: this page).
  // In a worker there is no page to navigate: it throws, saying what to
  // do instead.
  function loginURL(bff, returnTo) {
    if (!doc) throw new Error("tether: login() navigates a page; in a worker, open " + bff + "/login?return_to=… in a tab, then call restart()");
    const path = returnTo || global.location.pathname + global.location.search + global.location.hash;
    return bff + "/login?return_to=" + encodeURIComponent(path);
  }

  const base = doc ? ((baseURI) => () => apply(baseURI, doc, []))(getter(global.Node, "baseURI")) : () => global.location.href;

  const script = doc && doc.currentScript;
  const scriptURL = script ? script.src : global.location.href;
  const scriptWasm = script && script.dataset.wasm && !script.dataset.wasm.includes("{{")
    ? new NativeURL(script.dataset.wasm, doc.baseURI).href : "";
  const CSRF = { "X-CSRF": "1" };
  const MAX_ORIGINS = 256; // remembered answers of "allowed", then start over
  const ACK_WAIT = 100;    // ms a refresh request waits for the other tabs' "holding"
  // HANDSHAKE is the global through which the Go program hands over its
  // bridge (wasm/main.go). It exists only while go.run runs the program's
  // main, which does that first: no other script runs meanwhile.
  const HANDSHAKE = "__tether_handshake";
  let started = null;

  function start(options) {
    options = options || {};
    if (options.credentials !== undefined && options.credentials !== "same-origin" && options.credentials !== "include") {
      return Promise.reject(new Error('tether: credentials is "same-origin" or "include", not ' + JSON.stringify(options.credentials)));
    }
    started = started || (options.mode === "proxy" ? bootProxy(options) : boot(options)).then((t) => live(t, options)).catch((err) => {
      started = null; // let the page try again
      throw err;
    });
    return started;
  }

  async function boot(options) {
    const Go = NativeGo || global.Go;
    if (typeof Go !== "function") {
      throw new Error("tether: load wasm_exec.js before starting Tether");
    }
    const bff = (options.bff || "/bff").replace(/\/+$/, "");
    // Is there a session at all? Asked during the download, so that a
    // signed-in page waits no longer for its token; without a session,
    // no token is asked for (the 401 would be a console error).
    const credentials = options.credentials || "same-origin";
    const session = nativeFetch(bff + "/session", { credentials, cache: "no-store", headers: CSRF })
      .then((res) => (res.ok ? res.json() : null))
      .catch(() => null);
    const wasm = options.wasm || scriptWasm || (await wasmFromManifest());
    const go = new Go();
    const { instance } = await instantiateStreaming(nativeFetch(wasm), go.importObject);
    return new Tether(register(go, instance), bff, options.apiOrigins || [], session, credentials);
  }

  // register runs the Go program, which hands its bridge, a function, to
  // the handshake. The handshake is an own data property of globalThis:
  // an accessor another script defined there earlier is replaced, not
  // called; one it made non-configurable stops Tether.
  function register(go, instance) {
    let call = null;
    const hand = (fn) => {
      if (call === null && typeof fn === "function") call = fn;
    };
    if (!defineProperty(global, HANDSHAKE, { value: hand, configurable: true })) {
      throw new Error("tether: another script holds globalThis." + HANDSHAKE + ": not starting");
    }
    try {
      go.run(instance).catch(() => {}); // it never ends; a crash is reported below
    } finally {
      deleteProperty(global, HANDSHAKE);
    }
    if (call === null) throw new Error("tether: the WebAssembly client did not start");
    return call;
  }

  async function wasmFromManifest() {
    const url = new NativeURL("dist/manifest.json", scriptURL);
    const res = await nativeFetch(url, { cache: "no-cache" });
    if (!res.ok) throw new Error("tether: " + url + " answered " + res.status);
    return new NativeURL((await res.json()).wasm, url).href;
  }

  class Tether extends EventTarget {
    #call;
    #bff;
    #token = "";                // the client's usable token, as it last pushed it; "" = none
    #until = 0;                 // Date.now() from which #token must not be used
    #apis = { __proto__: null }; // origin -> is it an API origin (the client's answer)
    #apiCount = 0;
    #gate;                      // until the first token request may go; then null
    #credentials;               // of the requests to the BFF

    constructor(call, bff, apiOrigins, session, credentials) {
      super();
      this.#call = call;
      this.#bff = bff;
      this.#credentials = credentials;
      const tabs = typeof Channel === "function" ? new Tabs(call) : null;
      const emit = (type, expiresAt, reason, retryAfter) =>
        this.dispatchEvent(new CustomEvent(type, { detail: detail(type, expiresAt, reason, retryAfter) }));
      const lock = global.navigator && navigator.locks ? withLock : null;
      const setToken = (token, until) => {
        this.#token = token;
        this.#until = token ? until : 0;
      };
      const err = call("configure", bff, apiOrigins, nativeFetch, emit, lock, tabs && ((news) => tabs.announce(news)), setToken, credentials);
      if (err) throw err;
      enders.set(this, (reason) => call("ended", reason)); // the live event stream's (below)
      if (tabs) tabs.open();
      if (doc) {
        doc.addEventListener("visibilitychange", () => {
          if (doc.visibilityState === "visible") call("visible");
        });
      }
      this.fetch = this.fetch.bind(this);
      // After the caller's `await Tether.start()` has run, so that its
      // listeners see the first token or reconnect event; and once the BFF
      // said whether there is a session.
      this.#gate = new Promise((resolve) => setTimeout(resolve, 0))
        .then(() => session)
        .then((s) => {
          this.#gate = null;
          call(s && s.authenticated === false ? "nosession" : "prefetch");
        });
    }

    async fetch(input, init) {
      // The URL, read once; what goes to fetch is that URL or that Request.
      let target, href, request = null;
      if (typeof input === "object" && input !== null && !(input instanceof NativeURL)) {
        try {
          href = apply(requestURL, input, []); // a Request's own URL, not its url property
          target = request = input;
        } catch {
          // not a Request
        }
      }
      if (request === null) target = href = String(input); // one toString
      let url;
      try {
        url = new NativeURL(href, base());
      } catch {
        return nativeFetch(target, init); // let fetch report the bad URL
      }
      if (!this.#isAPI(apply(urlOrigin, url, []))) return nativeFetch(target, init);
      if (request === null) target = apply(urlHref, url, []); // exactly what was checked
      let token = this.#token;
      if (!token || Date.now() >= this.#until) {
        this.#token = ""; // past its moment: ask the client, which refreshes or says why not
        if (this.#gate) await this.#gate;
        token = await this.#call("token");
      }
      const replay = replayable(request, init);
      const spare = replay && request && apply(requestBody, request, []) ? apply(requestClone, request, []) : target;
      const res = await send(target, request, init, token);
      if (res.status !== 401) return res;
      let fresh;
      try {
        fresh = await this.#call("recover", token);
      } catch {
        return res; // the event (reconnect or degraded) tells the page why
      }
      if (!replay || !fresh || fresh === token) return res;
      return send(spare, request && spare, init, fresh);
    }

    // #isAPI tells whether origin gets the token, asking the client once per
    // origin (its normalization is the only one).
    #isAPI(origin) {
      let api = this.#apis[origin];
      if (api === undefined) {
        api = this.#call("allowed", origin) === true;
        if (this.#apiCount >= MAX_ORIGINS) {
          this.#apis = { __proto__: null };
          this.#apiCount = 0;
        }
        this.#apis[origin] = api;
        this.#apiCount++;
      }
      return api;
    }

    state() {
      const [connected, expiresAt, degraded, reason] = this.#call("state");
      return { connected, expiresAt, degraded, reason };
    }

    login(returnTo) {
      const url = loginURL(this.#bff, returnTo);
      this.#call("login");
      global.location.assign(url);
    }

    async logout() {
      const res = await nativeFetch(this.#bff + "/logout", { method: "POST", credentials: this.#credentials, headers: CSRF });
      if (!res.ok) throw new Error("tether: logout answered " + res.status);
      this.#call("logout");
    }

    async session() {
      const res = await nativeFetch(this.#bff + "/session", { credentials: this.#credentials, cache: "no-store", headers: CSRF });
      if (!res.ok) throw new Error("tether: session answered " + res.status);
      return res.json();
    }

    restart() {
      this.#call("restart");
    }
  }

  // Tabs is the tabs' channel (BroadcastChannel "tether"). It carries
  // news, never a token: {tab, news} with news one of "refreshing",
  // "refreshed", "unchanged" (for the client, see wasm/client.News),
  // "holding" (the answer to "refreshing": this tab's new calls now wait
  // for the new token), and "hello", "here", "bye" (which tabs are open).
  // A tab about to send a refresh request posts "refreshing" and waits
  // until every tab it knows has answered "holding", at most ACK_WAIT ms,
  // so that no tab sends the old token once the request has left.
  class Tabs {
    #channel = new Channel("tether");
    #call;
    #id = String(Math.random()).slice(2) + String(Date.now());
    #peers = new Set(); // the other tabs, by id
    #waiting = null;    // {pending: Set of ids, done()} while a refresh waits for them

    constructor(call) {
      this.#call = call;
      this.#channel.onmessage = ({ data }) => this.#receive(data);
    }

    open() {
      this.#post("hello");
      if (!doc) return; // a worker: no page to hide or show
      global.addEventListener("pagehide", () => this.#post("bye"));
      global.addEventListener("pageshow", (e) => e.persisted && this.#post("hello"));
    }

    #post(news, to) {
      this.#channel.postMessage({ tab: this.#id, news, to });
    }

    // announce posts the client's news; for "refreshing" it returns a
    // Promise that settles once the known tabs hold their calls.
    announce(news) {
      this.#post(news);
      if (news !== "refreshing" || this.#peers.size === 0) return undefined;
      return new Promise((resolve) => {
        const pending = new Set(this.#peers);
        const w = {
          pending,
          done: () => {
            if (this.#waiting !== w) return;
            this.#waiting = null;
            clearTimeout(timer);
            resolve();
          },
        };
        const timer = setTimeout(() => {
          for (const tab of pending) this.#peers.delete(tab); // silent: gone, or frozen
          w.done();
        }, ACK_WAIT);
        this.#waiting = w;
      });
    }

    #receive(data) {
      if (data === null || typeof data !== "object") return;
      const { tab, news, to } = data;
      if (typeof tab !== "string" || typeof news !== "string") return;
      const w = this.#waiting;
      switch (news) {
        case "bye":
          this.#peers.delete(tab);
          if (w && w.pending.delete(tab) && w.pending.size === 0) w.done();
          return;
        case "hello":
          this.#post("here");
          break;
        case "holding":
          if (to === this.#id && w && w.pending.delete(tab) && w.pending.size === 0) w.done();
          break;
        case "here":
          break;
        default:
          this.#call("news", news); // the client asks the BFF for any token
          if (news === "refreshing") this.#post("holding", tab); // its new calls wait from now on
      }
      this.#peers.add(tab);
    }
  }

  function detail(type, expiresAt, reason, retryAfter) {
    switch (type) {
      case "token": return { expiresAt };
      case "degraded": return { reason, retryAfter };
      case "reconnect": case "recovered": return { reason };
      default: return {};
    }
  }

  // withLock runs run() under the tabs' lock.
  function withLock(run) {
    return navigator.locks.request("tether-token", run);
  }

  // replayable tells whether a request can be sent a second time.
  function replayable(request, init) {
    const body = init && init.body;
    if (body !== undefined && body !== null) {
      return !(typeof ReadableStream === "function" && body instanceof ReadableStream);
    }
    return !(request && apply(requestBodyUsed, request, []));
  }

  // send fetches target with the token. The headers are a record of our
  // own and the init has no prototype: on the way to fetch, no getter on
  // Object.prototype and no redefined Headers method sees the token.
  function send(target, request, init, token) {
    const headers = { __proto__: null };
    const own = init && init.headers !== undefined ? init.headers : request ? apply(requestHeaders, request, []) : undefined;
    if (own !== undefined) {
      for (const [name, value] of new NativeHeaders(own)) headers[name] = value;
    }
    headers.authorization = "Bearer " + token;
    return nativeFetch(target, { __proto__: null, ...init, headers });
  }

  // ---- proxy mode ------------------------------------------------------
  //
  // Tether.start({ mode: "proxy", apis: { github: "https://api.github.com" } }):
  // tether.fetch("https://api.github.com/user?x=1") goes to
  // <bff>/api/github/user?x=1, same origin, with the cookie and X-CSRF; the
  // BFF adds the token, refreshes it, retries once after the API's 401. The
  // browser holds no token and loads no WebAssembly. The page hears the
  // same events and errors as in token mode, from the BFF's Tether-* answer
  // headers: "token" {expiresAt} when the token the BFF used changed (never
  // the token), "recovered" {reason: "rejected"} after the BFF's retry,
  // "degraded"/"recovered" around an outage, "reconnect" {reason} once the
  // session is over (the call that found out returns the BFF's 401; later
  // ones reject at once with TetherReconnectRequired); a provider outage
  // with no valid token left rejects with TetherUnavailable (retryAfter).
  // URLs under no route are fetched untouched or, with apiOrigins too,
  // token-mediated (that needs POST /bff/token, and wasm_exec.js).

  const urlPathname = getter(NativeURL, "pathname"), urlSearch = getter(NativeURL, "search");
  const UNAVAILABLE = new Set(["provider_unavailable", "storage_unavailable", "too_many_refreshes"]);
  const EVENTS = ["token", "reconnect", "degraded", "recovered", "logout"];

  async function bootProxy(options) {
    const bff = (options.bff || "/bff").replace(/\/+$/, "");
    const routes = proxyRoutes(options.apis);
    const inner = options.apiOrigins && options.apiOrigins.length ? await boot(options) : null;
    return new ProxyTether(bff, routes, inner, options.credentials || "same-origin");
  }

  // proxyRoutes checks options.apis: route name -> the API's base URL
  // (http(s), no query or fragment), longest base path first.
  function proxyRoutes(apis) {
    const routes = [];
    for (const [name, base] of Object.entries(apis || {})) {
      if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(name)) throw new Error("tether: apis: " + JSON.stringify(name) + " is not a route name");
      const u = new NativeURL(String(base));
      if ((u.protocol !== "https:" && u.protocol !== "http:") || u.search || u.hash || u.username || u.password) {
        throw new Error("tether: apis." + name + ": " + JSON.stringify(String(base)) + " is not a base URL like https://api.example");
      }
      routes.push({ name, origin: apply(urlOrigin, u, []), path: apply(urlPathname, u, []).replace(/\/+$/, "") });
    }
    if (!routes.length) throw new Error('tether: mode "proxy" needs apis, like { github: "https://api.github.com" }');
    return routes.sort((a, b) => b.path.length - a.path.length);
  }

  function tetherError(name, message, fields) {
    const err = new Error(message);
    err.name = name;
    return Object.assign(err, fields);
  }

  class ProxyTether extends EventTarget {
    #bff;
    #routes;
    #inner; // the token-mediated Tether for apiOrigins, or null
    #state = { connected: false, expiresAt: 0, degraded: false, reason: "" };
    #credentials;

    constructor(bff, routes, inner, credentials) {
      super();
      this.#credentials = credentials;
      this.#bff = bff;
      this.#routes = routes;
      this.#inner = inner;
      enders.set(this, (reason) => this.#ended(reason)); // the live event stream's (below)
      if (inner) {
        for (const type of EVENTS) {
          inner.addEventListener(type, (e) => this.dispatchEvent(new CustomEvent(type, { detail: e.detail })));
        }
      }
      this.fetch = this.fetch.bind(this);
      // After the caller's `await Tether.start()`, as in token mode.
      if (!inner) setTimeout(() => this.#prefetch(), 0);
    }

    #emit(type, detail) {
      this.dispatchEvent(new CustomEvent(type, { detail }));
    }

    // #prefetch tells the page at start whether there is a session, as the
    // first token request does in token mode.
    async #prefetch() {
      let s;
      try {
        s = await this.session();
      } catch {
        return; // the first call will tell
      }
      if (s.authenticated) {
        this.#token(s.access_expires_at || 0);
      } else {
        this.#reconnect(s.reason || "no_session");
      }
    }

    #route(href) {
      let u;
      try {
        u = new NativeURL(href, base());
      } catch {
        return null;
      }
      const origin = apply(urlOrigin, u, []), path = apply(urlPathname, u, []);
      for (const r of this.#routes) {
        if (origin === r.origin && (path === r.path || path.startsWith(r.path + "/") || r.path === "")) {
          return this.#bff + "/api/" + r.name + path.slice(r.path.length) + apply(urlSearch, u, []);
        }
      }
      return null;
    }

    async fetch(input, init) {
      // The URL is read once, with the built-ins as they were at load:
      // the decision and the request are about the same URL.
      const isRequest = input instanceof NativeRequest;
      const target = this.#route(isRequest ? apply(requestURL, input, []) : String(input));
      if (target === null) return this.#inner ? this.#inner.fetch(input, init) : nativeFetch(input, init);
      if (this.#state.reason) {
        throw tetherError("TetherReconnectRequired", "tether: reconnect required (" + this.#state.reason + ")", { reason: this.#state.reason });
      }
      const own = init && init.headers !== undefined ? init.headers : isRequest ? apply(requestHeaders, input, []) : undefined;
      const headers = new NativeHeaders(own);
      headers.set("X-CSRF", "1");
      const opts = {};
      if (isRequest) {
        for (const k of ["method", "cache", "redirect", "referrer", "referrerPolicy", "integrity", "keepalive", "signal"]) opts[k] = input[k];
        if (input.method !== "GET" && input.method !== "HEAD" && input.body) opts.body = await input.arrayBuffer();
      }
      const res = await nativeFetch(target, Object.assign(opts, init, { headers, credentials: this.#credentials }));
      const code = res.headers.get("Tether-Error");
      if (code === "reconnect_required") {
        let reason = "no_session";
        try {
          reason = (await res.clone().json()).reason || reason;
        } catch {
          // keep no_session
        }
        this.#reconnect(reason);
        return res;
      }
      if (UNAVAILABLE.has(code)) {
        const retryAfter = Number(res.headers.get("Retry-After")) || 0;
        this.#degrade(code, retryAfter);
        throw tetherError("TetherUnavailable", "tether: " + code + ", retry in " + retryAfter + " s", { reason: code, retryAfter });
      }
      if (code === null) this.#answered(res.headers);
      return res;
    }

    // #answered reads what an upstream answer says about the token.
    #answered(h) {
      const degraded = h.get("Tether-Degraded");
      const expires = h.get("Tether-Expires-At");
      if (h.get("Tether-Retried") === "1") this.#emit("recovered", { reason: "rejected" });
      if (degraded !== null) {
        this.#degrade("provider_unavailable", Number(degraded) || 0);
      } else if (this.#state.degraded) {
        this.#state.degraded = false;
        this.#emit("recovered", { reason: "degraded" });
      }
      if (expires !== null) this.#token(Number(expires) || 0);
    }

    #token(expiresAt) {
      const st = this.#state;
      if (st.connected && st.expiresAt === expiresAt) return;
      st.connected = true;
      st.expiresAt = expiresAt;
      this.#emit("token", { expiresAt });
    }

    #degrade(reason, retryAfter) {
      if (this.#state.degraded) return;
      this.#state.degraded = true;
      this.#emit("degraded", { reason, retryAfter });
    }

    // #ended is told by the live event stream that the session ended.
    #ended(reason) {
      if (!this.#inner) return this.#reconnect(reason);
      if (!this.#state.reason) this.#state = { connected: false, expiresAt: 0, degraded: false, reason };
      enders.get(this.#inner)(reason); // its reconnect event is passed on
    }

    #reconnect(reason) {
      if (this.#state.reason) return;
      this.#state = { connected: false, expiresAt: 0, degraded: false, reason };
      this.#emit("reconnect", { reason });
    }

    state() {
      const own = Object.assign({}, this.#state);
      if (!this.#inner) return own;
      const other = this.#inner.state();
      return {
        connected: own.connected || other.connected, expiresAt: Math.max(own.expiresAt, other.expiresAt),
        degraded: own.degraded || other.degraded, reason: own.reason || other.reason,
      };
    }

    login(returnTo) {
      if (this.#inner) return this.#inner.login(returnTo);
      global.location.assign(loginURL(this.#bff, returnTo));
    }

    async logout() {
      if (this.#inner) {
        await this.#inner.logout(); // its "logout" event is passed on
      } else {
        const res = await nativeFetch(this.#bff + "/logout", { method: "POST", credentials: this.#credentials, headers: CSRF });
        if (!res.ok) throw new Error("tether: logout answered " + res.status);
      }
      this.#state = { connected: false, expiresAt: 0, degraded: false, reason: "logged_out" };
      if (!this.#inner) this.#emit("logout", {});
    }

    async session() {
      const res = await nativeFetch(this.#bff + "/session", { credentials: this.#credentials, cache: "no-store", headers: CSRF });
      if (!res.ok) throw new Error("tether: session answered " + res.status);
      return res.json();
    }

    restart() {
      this.#state = { connected: false, expiresAt: 0, degraded: false, reason: "" };
      if (this.#inner) {
        this.#inner.restart();
      } else {
        this.#prefetch();
      }
    }
  }

  // ---- the live event stream --------------------------------------------
  //
  // Tether.start({ live: true }): while the session lasts, the page holds an
  // EventSource on <bff>/events. When the BFF says the session ended
  // (session_ended {reason}: a logout in another tab or browser, a
  // revocation another replica noticed, the idle timeout, a back-channel
  // logout, an operator), the client stands as after a reconnect_required
  // answer, through the same path: the token dropped, one "reconnect" event
  // with the reason, API calls rejected at once with TetherReconnectRequired,
  // no request made. The stream opens at a "token" event (there is a
  // session) and closes at "reconnect" and "logout"; a later "token"
  // (restart() after a new sign-in) opens it again. After a network error
  // the EventSource reconnects by itself after the BFF's retry: advice
  // (5 to 7.5 s, jittered); an answer that is not a stream (401, 403, 429,
  // 503) ends it, and the page then asks GET <bff>/session once: an ended
  // session is reported as above, a live one gets a new stream after a
  // pause that doubles from 5 s to 5 min.

  const NativeEventSource = global.EventSource;
  const enders = new WeakMap(); // a Tether or ProxyTether -> its private end(reason)
  const LIVE_PAUSE = 5000, LIVE_PAUSE_MAX = 300000;
  const REASONS = new Set(["no_session", "revoked", "expired", "signed_out"]);

  function live(tether, options) {
    if (options.live && typeof NativeEventSource === "function") {
      new Live(tether, (options.bff || "/bff").replace(/\/+$/, ""));
    }
    return tether;
  }

  class Live {
    #tether;
    #url;
    #credentials; // the BFF is another origin: send its cookie (withCredentials)
    #source = null;
    #timer = 0;
    #pause = LIVE_PAUSE;
    #over = false; // the session ended (or the user logged out): no stream until a new token

    constructor(tether, bff) {
      this.#tether = tether;
      const url = new NativeURL(bff + "/events", base());
      this.#url = apply(urlHref, url, []);
      // Same-origin streams carry the cookie anyway; "include" matters
      // only across origins, which this tells by itself.
      this.#credentials = apply(urlOrigin, url, []) !== global.location.origin;
      tether.addEventListener("token", () => {
        this.#over = false;
        this.#open();
      });
      for (const type of ["reconnect", "logout"]) {
        tether.addEventListener(type, () => {
          this.#over = true;
          this.#close();
        });
      }
    }

    #open() {
      if (this.#source || this.#timer || this.#over) return;
      const es = new NativeEventSource(this.#url, { withCredentials: this.#credentials });
      this.#source = es;
      es.addEventListener("session_ended", (e) => {
        let reason = "";
        try {
          reason = JSON.parse(e.data).reason;
        } catch {
          // not the contract's: revoked
        }
        this.#end(reason);
      });
      es.addEventListener("open", () => {
        this.#pause = LIVE_PAUSE;
      });
      es.addEventListener("error", () => {
        if (es.readyState !== NativeEventSource.CLOSED || this.#source !== es) return; // it reconnects by itself
        this.#source = null;
        this.#refused();
      });
    }

    // #refused: the BFF answered with something other than a stream.
    async #refused() {
      let s = null;
      try {
        s = await this.#tether.session();
      } catch {
        // unreachable, or 503: try again later
      }
      if (this.#over) return;
      if (s && s.authenticated === false) {
        this.#end(s.reason || "no_session");
        return;
      }
      this.#timer = setTimeout(() => {
        this.#timer = 0;
        this.#open();
      }, this.#pause);
      this.#pause = Math.min(2 * this.#pause, LIVE_PAUSE_MAX);
    }

    #end(reason) {
      this.#close();
      if (this.#over) return;
      this.#over = true;
      enders.get(this.#tether)(REASONS.has(reason) ? reason : "revoked"); // the client takes the contract's only
    }

    #close() {
      if (this.#source) this.#source.close();
      this.#source = null;
      clearTimeout(this.#timer);
      this.#timer = 0;
    }
  }

  global.Tether = { start };
})(globalThis);
