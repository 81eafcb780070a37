// The example extension's service worker: the only part of the extension
// that holds the access token (in Tether's WebAssembly client and
// tether.js's private field, in memory; nothing in chrome.storage,
// localStorage or IndexedDB). The popup and the content script ask it, by
// message, for one fixed API call and get its result; no message gets the
// token, and none names a URL to fetch.
//
// When Chrome stops this worker (idle for 30 s), the token goes with it;
// the next message starts it again, and Tether asks the BFF for the
// session's token once (POST /bff/token, answered from the BFF's vault:
// no provider refresh while the token is valid).

// Chrome: a classic service worker loads its scripts here, during its
// first evaluation. Firefox runs background.scripts (the same files, in
// this order) in an event page, where importScripts does not exist.
if (typeof importScripts === "function") {
  importScripts("config.js", "dist/wasm_exec.js", "tether.js");
}

const { bff, api } = globalThis.TETHER_EXAMPLE;
const EXTENSION = chrome.runtime.getURL(""); // chrome-extension://<id>/

// Started on every wake-up: the client, its WebAssembly, one /bff/session
// and, with a session, one /bff/token.
const started = Tether.start({ bff, apiOrigins: [new URL(api).origin], credentials: "include" });

started.then((tether) => {
  tether.addEventListener("reconnect", (e) => tell({ type: "reconnect", reason: e.detail.reason }));
  tether.addEventListener("token", () => tell({ type: "signed-in" }));
  tether.addEventListener("logout", () => tell({ type: "signed-out" }));
});

// tell sends news to the extension's open pages (the popup), never to
// content scripts; nobody listening is fine.
function tell(news) {
  chrome.runtime.sendMessage(news).catch(() => {});
}

// What each kind of sender may ask. A message of another type, or from
// anyone else, is refused.
const ALLOWED = {
  popup: new Set(["status", "sign-in", "sign-out", "call-api"]),
  "signed-in": new Set(["signed-in"]),
  content: new Set(["call-api"]),
};

// senderKind tells who sent a message: one of this extension's pages (by
// its URL), or this extension's content script in a web page's top frame.
// chrome.runtime.onMessage only hears this extension's own contexts (no
// externally_connectable: web pages and other extensions cannot message
// it), but a content script runs in pages that may be hostile.
function senderKind(sender) {
  if (sender.id !== chrome.runtime.id || typeof sender.url !== "string") return null;
  if (sender.url.startsWith(EXTENSION)) {
    const page = new URL(sender.url).pathname;
    if (page === "/popup.html") return "popup";
    if (page === "/signed-in.html" && sender.frameId === 0) return "signed-in";
    return null;
  }
  return sender.tab && sender.frameId === 0 ? "content" : null;
}

chrome.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  const kind = senderKind(sender);
  const type = msg !== null && typeof msg === "object" && typeof msg.type === "string" ? msg.type : "";
  if (!kind || !ALLOWED[kind].has(type)) {
    sendResponse({ error: "refused" });
    return false;
  }
  handle(type, kind, sender).then(sendResponse, (err) => sendResponse({ error: err.name || "Error", reason: err.reason || "" }));
  return true; // the answer comes later
});

async function handle(type, kind, sender) {
  const tether = await started;
  switch (type) {
    case "status": {
      const state = tether.state();
      if (!state.connected && state.reason) return { signedIn: false, reason: state.reason };
      const s = await tether.session();
      return s.authenticated ? { signedIn: true, name: s.name } : { signedIn: false, reason: s.reason || "no_session" };
    }
    case "call-api":
      return callAPI(tether, kind);
    case "sign-in": {
      // A tab of the user's own browser: the BFF's cookie is set where
      // this worker's requests to the BFF will find it.
      const returnTo = chrome.runtime.getURL("signed-in.html");
      await chrome.tabs.create({ url: bff + "/login?return_to=" + encodeURIComponent(returnTo) });
      return { ok: true };
    }
    case "signed-in":
      // The sign-in tab came back to signed-in.html (the sender: only
      // that page in a tab's top frame may say this): ask the BFF again,
      // and close the tab.
      tether.restart();
      if (sender.tab) chrome.tabs.remove(sender.tab.id).catch(() => {});
      return { ok: true };
    case "sign-out":
      await tether.logout();
      return { ok: true };
  }
  throw new Error("unreachable");
}

// callAPI makes the one call this extension makes: GET the API's /me.
// The popup gets the answer; a content script, which shares its page's
// DOM with scripts the extension does not control, gets only the name.
async function callAPI(tether, kind) {
  const res = await tether.fetch(api);
  const out = { status: res.status };
  if (res.ok) {
    const me = await res.json();
    out.name = me.name;
    if (kind === "popup") Object.assign(out, { subject: me.subject, email: me.email });
  }
  return out;
}
