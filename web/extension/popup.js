// The popup: asks the service worker who is signed in, to sign in or out,
// or to make the one API call; it never holds a token. The worker tells
// it when the session ends ("reconnect") or a token arrives.
"use strict";

const $ = (id) => document.getElementById(id);
// What the worker told this popup, in order (the tests read it).
const news = [];
globalThis.popupNews = news;

function ask(type) {
  return chrome.runtime.sendMessage({ type });
}

function show(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
  $("sign-in").hidden = state !== "signed-out";
  $("call-api").hidden = state !== "signed-in";
  $("sign-out").hidden = state !== "signed-in";
}

function reconnect(reason) {
  $("reason").textContent = reason;
  $("reconnect").hidden = false;
  show("reconnect", "Not signed in");
  $("call-api").hidden = false; // to show that calls now fail at once
}

async function refresh() {
  const s = await ask("status");
  if (s.error) {
    show("error", "The extension could not reach Tether: " + s.error);
  } else if (s.signedIn) {
    $("reconnect").hidden = true;
    show("signed-in", "Signed in as " + s.name);
  } else if (s.reason && s.reason !== "no_session") {
    reconnect(s.reason);
  } else {
    show("signed-out", "Not signed in");
  }
}

async function callAPI() {
  const r = await ask("call-api");
  $("result").dataset.status = r.error ? "error" : String(r.status);
  $("result").dataset.error = r.error || "";
  $("result").textContent = r.error
    ? r.error + (r.reason ? " (" + r.reason + ")" : "")
    : r.status + (r.name ? ": " + r.name + " <" + r.email + ">" : "");
  return r;
}
globalThis.popupCallAPI = callAPI;

chrome.runtime.onMessage.addListener((msg, sender) => {
  if (sender.id !== chrome.runtime.id || sender.tab || msg === null || typeof msg !== "object") return;
  news.push(msg.type + (msg.reason ? ":" + msg.reason : ""));
  if (msg.type === "reconnect") reconnect(msg.reason);
  if (msg.type === "signed-in" || msg.type === "signed-out") refresh();
});

$("sign-in").addEventListener("click", () => ask("sign-in"));
$("sign-in-again").addEventListener("click", () => ask("sign-in"));
$("sign-out").addEventListener("click", () => ask("sign-out").then(refresh));
$("call-api").addEventListener("click", callAPI);
refresh();
