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
 * tether.fetch(input, init) has window.fetch's contract. For an API origin
 * it adds "Authorization: Bearer <token>" (to a copy of the headers). The
 * WebAssembly client decides everything: which origins are API origins
 * (asked once per origin and remembered, for up to 256 origins), and which
 * token may be used until when. It pushes its usable token, and the moment
 * it stops being usable, whenever they change (before the event of the
 * same change: after "reconnect" or "logout" no call carries the old one);
 * tether.js keeps that copy in a private field of the Tether object and
 * sends it while Date.now() is before that moment, without calling into
 * WebAssembly. Otherwise the call waits for the client's token. On a 401
 * it asks for a new token once and retries once if the body can be sent
 * again (none, string, URLSearchParams, Blob, ArrayBuffer, a view,
 * FormData, an unused Request; not a ReadableStream); otherwise, or if no
 * new token comes, it returns the 401. Other origins are fetched untouched.
 * After a reconnect, API calls reject at once with an Error named
 * "TetherReconnectRequired" (error.reason); while the BFF is unavailable
 * and no token is left, with "TetherUnavailable" (error.retryAfter, s).
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
 * event or in the DOM. Nothing is written to localStorage, sessionStorage,
 * IndexedDB or cookies.
 * The tabs of an origin take turns asking for a token (navigator.locks
 * "tether-token") and pass a fresh one to each other in memory
 * (BroadcastChannel "tether"), so N tabs cost one /bff/token per refresh.
 */
(function (global) {
  "use strict";

  const nativeFetch = global.fetch.bind(global);
  const script = global.document && document.currentScript;
  const scriptURL = script ? script.src : global.location.href;
  const scriptWasm = script && script.dataset.wasm && !script.dataset.wasm.includes("{{")
    ? new URL(script.dataset.wasm, document.baseURI).href : "";
  const CSRF = { "X-CSRF": "1" };
  const MAX_ORIGINS = 256; // remembered answers of "allowed", then start over
  let started = null;

  function start(options) {
    options = options || {};
    started = started || (options.mode === "proxy" ? bootProxy(options) : boot(options)).catch((err) => {
      started = null; // let the page try again
      throw err;
    });
    return started;
  }

  async function boot(options) {
    if (typeof global.Go !== "function") {
      throw new Error("tether: load wasm_exec.js before starting Tether");
    }
    const bff = (options.bff || "/bff").replace(/\/+$/, "");
    const wasm = options.wasm || scriptWasm || (await wasmFromManifest());
    const go = new global.Go();
    const ready = new Promise((resolve) => { global.__tether_ready = resolve; });
    const { instance } = await WebAssembly.instantiateStreaming(nativeFetch(wasm), go.importObject);
    const exited = go.run(instance).then(() => { throw new Error("tether: the WebAssembly client exited"); });
    const bridge = await Promise.race([ready, exited]);
    delete global.__tether_ready; // the bridge lives only in the Tether object
    return new Tether(bridge, bff, options.apiOrigins || []);
  }

  async function wasmFromManifest() {
    const url = new URL("dist/manifest.json", scriptURL);
    const res = await nativeFetch(url, { cache: "no-cache" });
    if (!res.ok) throw new Error("tether: " + url + " answered " + res.status);
    return new URL((await res.json()).wasm, url).href;
  }

  class Tether extends EventTarget {
    #bridge;
    #bff;
    #token = "";       // the client's usable token, as it last pushed it; "" = none
    #until = 0;        // Date.now() from which #token must not be used
    #apis = new Map(); // origin -> is it an API origin (the client's answer)

    constructor(bridge, bff, apiOrigins) {
      super();
      this.#bridge = bridge;
      this.#bff = bff;
      const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("tether") : null;
      const emit = (type, expiresAt, reason, retryAfter) =>
        this.dispatchEvent(new CustomEvent(type, { detail: detail(type, expiresAt, reason, retryAfter) }));
      const share = channel && ((token, expiresAt, expiresIn, refreshBuffer) => channel.postMessage({
        access_token: token, token_type: "Bearer", expires_at: expiresAt, expires_in: expiresIn, refresh_buffer: refreshBuffer,
      }));
      const lock = global.navigator && navigator.locks ? withLock : null;
      const setToken = (token, until) => {
        this.#token = token;
        this.#until = token ? until : 0;
      };
      const err = bridge.call("configure", bff, apiOrigins, nativeFetch, emit, lock, share, setToken);
      if (err) throw err;
      if (channel) {
        channel.onmessage = ({ data: m }) =>
          m && bridge.call("offer", m.access_token, m.expires_at, m.expires_in, m.refresh_buffer);
      }
      if (global.document) {
        document.addEventListener("visibilitychange", () => {
          if (document.visibilityState === "visible") bridge.call("visible");
        });
      }
      this.fetch = this.fetch.bind(this);
      // After the caller's `await Tether.start()` has run, so that its
      // listeners see the first token or reconnect event.
      setTimeout(() => bridge.call("prefetch"), 0);
    }

    async fetch(input, init) {
      let origin;
      try {
        origin = new URL(input instanceof Request ? input.url : String(input), global.document ? document.baseURI : global.location.href).origin;
      } catch {
        return nativeFetch(input, init); // let fetch report the bad URL
      }
      if (!this.#isAPI(origin)) return nativeFetch(input, init);
      let token = this.#token;
      if (!token || Date.now() >= this.#until) {
        this.#token = ""; // past its moment: ask the client, which refreshes or says why not
        token = await this.#bridge.call("token");
      }
      const replay = replayable(input, init);
      const spare = replay && input instanceof Request && input.body ? input.clone() : input;
      const res = await send(input, init, token);
      if (res.status !== 401) return res;
      let fresh;
      try {
        fresh = await this.#bridge.call("recover", token);
      } catch {
        return res; // the event (reconnect or degraded) tells the page why
      }
      if (!replay || !fresh || fresh === token) return res;
      return send(spare, init, fresh);
    }

    // #isAPI tells whether origin gets the token, asking the client once per
    // origin (its normalization is the only one).
    #isAPI(origin) {
      let api = this.#apis.get(origin);
      if (api === undefined) {
        api = this.#bridge.call("allowed", origin) === true;
        if (this.#apis.size >= MAX_ORIGINS) this.#apis.clear();
        this.#apis.set(origin, api);
      }
      return api;
    }

    state() {
      const [connected, expiresAt, degraded, reason] = this.#bridge.call("state");
      return { connected, expiresAt, degraded, reason };
    }

    login(returnTo) {
      const path = returnTo || global.location.pathname + global.location.search + global.location.hash;
      this.#bridge.call("login");
      global.location.assign(this.#bff + "/login?return_to=" + encodeURIComponent(path));
    }

    async logout() {
      const res = await nativeFetch(this.#bff + "/logout", { method: "POST", credentials: "same-origin", headers: CSRF });
      if (!res.ok) throw new Error("tether: logout answered " + res.status);
      this.#bridge.call("logout");
    }

    async session() {
      const res = await nativeFetch(this.#bff + "/session", { credentials: "same-origin", cache: "no-store", headers: CSRF });
      if (!res.ok) throw new Error("tether: session answered " + res.status);
      return res.json();
    }

    restart() {
      this.#bridge.call("restart");
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

  // withLock runs run() under the tabs' lock. A tab that had to wait gives
  // the holder's BroadcastChannel message a moment to arrive: the client
  // then finds the fresh token in its cache and asks the BFF for nothing.
  function withLock(run) {
    return navigator.locks.request("tether-token", { ifAvailable: true }, (lock) =>
      lock ? run() : navigator.locks.request("tether-token", async () => {
        await new Promise((resolve) => setTimeout(resolve, 25));
        return run();
      }));
  }

  // replayable tells whether a request can be sent a second time.
  function replayable(input, init) {
    const body = init && init.body;
    if (body !== undefined && body !== null) {
      return !(typeof ReadableStream === "function" && body instanceof ReadableStream);
    }
    return !(input instanceof Request && input.bodyUsed);
  }

  function send(input, init, token) {
    const own = init && init.headers !== undefined ? init.headers : input instanceof Request ? input.headers : undefined;
    const headers = new Headers(own);
    headers.set("Authorization", "Bearer " + token);
    return nativeFetch(input, Object.assign({}, init, { headers }));
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

  const ProxyURL = global.URL, ProxyRequest = global.Request, ProxyHeaders = global.Headers;
  const UNAVAILABLE = new Set(["provider_unavailable", "storage_unavailable", "too_many_refreshes"]);
  const EVENTS = ["token", "reconnect", "degraded", "recovered", "logout"];

  async function bootProxy(options) {
    const bff = (options.bff || "/bff").replace(/\/+$/, "");
    const routes = proxyRoutes(options.apis);
    const inner = options.apiOrigins && options.apiOrigins.length ? await boot(options) : null;
    return new ProxyTether(bff, routes, inner);
  }

  // proxyRoutes checks options.apis: route name -> the API's base URL
  // (http(s), no query or fragment), longest base path first.
  function proxyRoutes(apis) {
    const routes = [];
    for (const [name, base] of Object.entries(apis || {})) {
      if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(name)) throw new Error("tether: apis: " + JSON.stringify(name) + " is not a route name");
      const u = new ProxyURL(String(base));
      if ((u.protocol !== "https:" && u.protocol !== "http:") || u.search || u.hash || u.username || u.password) {
        throw new Error("tether: apis." + name + ": " + JSON.stringify(String(base)) + " is not a base URL like https://api.example");
      }
      routes.push({ name, origin: u.origin, path: u.pathname.replace(/\/+$/, "") });
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

    constructor(bff, routes, inner) {
      super();
      this.#bff = bff;
      this.#routes = routes;
      this.#inner = inner;
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
        u = new ProxyURL(href, global.document ? document.baseURI : global.location.href);
      } catch {
        return null;
      }
      for (const r of this.#routes) {
        if (u.origin === r.origin && (u.pathname === r.path || u.pathname.startsWith(r.path + "/") || r.path === "")) {
          return this.#bff + "/api/" + r.name + u.pathname.slice(r.path.length) + u.search;
        }
      }
      return null;
    }

    async fetch(input, init) {
      const isRequest = input instanceof ProxyRequest;
      const target = this.#route(isRequest ? input.url : String(input));
      if (target === null) return this.#inner ? this.#inner.fetch(input, init) : nativeFetch(input, init);
      if (this.#state.reason) {
        throw tetherError("TetherReconnectRequired", "tether: reconnect required (" + this.#state.reason + ")", { reason: this.#state.reason });
      }
      const own = init && init.headers !== undefined ? init.headers : isRequest ? input.headers : undefined;
      const headers = new ProxyHeaders(own);
      headers.set("X-CSRF", "1");
      const opts = { credentials: "same-origin" };
      if (isRequest) {
        for (const k of ["method", "cache", "redirect", "referrer", "referrerPolicy", "integrity", "keepalive", "signal"]) opts[k] = input[k];
        if (input.method !== "GET" && input.method !== "HEAD" && input.body) opts.body = await input.arrayBuffer();
      }
      const res = await nativeFetch(target, Object.assign(opts, init, { headers, credentials: "same-origin" }));
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
      const path = returnTo || global.location.pathname + global.location.search + global.location.hash;
      global.location.assign(this.#bff + "/login?return_to=" + encodeURIComponent(path));
    }

    async logout() {
      if (this.#inner) {
        await this.#inner.logout(); // its "logout" event is passed on
      } else {
        const res = await nativeFetch(this.#bff + "/logout", { method: "POST", credentials: "same-origin", headers: CSRF });
        if (!res.ok) throw new Error("tether: logout answered " + res.status);
      }
      this.#state = { connected: false, expiresAt: 0, degraded: false, reason: "logged_out" };
      if (!this.#inner) this.#emit("logout", {});
    }

    async session() {
      const res = await nativeFetch(this.#bff + "/session", { credentials: "same-origin", cache: "no-store", headers: CSRF });
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

  global.Tether = { start };
})(globalThis);
