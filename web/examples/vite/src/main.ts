// The Tether + Vite example: a single-page app with two client-side
// routes, / and /settings/profile. The browser client comes from the npm
// package; the BFF is on this origin under /bff (in development, Vite's
// proxy sends /bff to it: see vite.config.ts).
import { Tether, isTetherError, type TetherClient, type TetherEventType } from "@tetherauth/tether";
import { startRouter, type View } from "./router";
import "./style.css";

/** The API that gets the token: the dev provider's sample API by default. */
const API = import.meta.env.VITE_API_URL ?? "http://127.0.0.1:9090/api/me";

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error("no #" + id);
  return el as T;
};

const tether: TetherClient = await Tether.start({ bff: "/bff", apiOrigins: [new URL(API).origin] });

let user = ""; // who the BFF says is signed in
let ended = false; // the session ended under the user: the banner asks to sign in again

// Every event in the log, as the page saw it (details never hold a token).
const events: TetherEventType[] = ["token", "reconnect", "degraded", "recovered", "logout"];
for (const type of events) {
  tether.addEventListener(type, (e) => {
    const li = document.createElement("li");
    li.dataset.kind = type;
    li.textContent = type + " " + JSON.stringify(e.detail);
    $("events").append(li);
    showState();
  });
}
tether.addEventListener("reconnect", (e) => {
  // Without a session from the start (no_session, nobody signed in), the
  // sign-in button is all there is to say.
  if (e.detail.reason === "no_session" && !user) return;
  ended = true;
  $("reconnect-text").textContent = "Your session ended (" + e.detail.reason + "). Sign in again to go on.";
  $("reconnect").hidden = false;
  showState();
});

function showState(): void {
  const s = tether.state();
  const state = s.connected ? "connected" : ended ? "reconnect" : user ? "connecting" : "signed-out";
  const status = $("status");
  status.dataset.state = state;
  status.textContent = {
    connected: "Signed in as " + user,
    reconnect: "Signed out (" + s.reason + ")",
    connecting: "Signing in as " + user + "…",
    "signed-out": "Signed out",
  }[state];
  $("sign-in").hidden = state !== "signed-out";
  $("sign-out").hidden = state !== "connected" && state !== "connecting";
}

// Sign-in leaves for the provider and comes back to this very route.
$("sign-in").addEventListener("click", () => tether.login());
$("reconnect-sign-in").addEventListener("click", () => tether.login());
$("sign-out").addEventListener("click", async () => {
  await tether.logout();
  user = "";
  ended = false;
  showState();
});

const home: View = (root) => {
  root.innerHTML = `<h1>Home</h1><p>Open <a href="/settings/profile" data-link>your profile</a>: it calls the API with the token.</p>`;
};

const profile: View = (root) => {
  root.innerHTML = `<h1>Settings › Profile</h1>
    <p id="who"></p>
    <button id="call-api" type="button">Call the API</button>
    <pre id="api-result" data-status=""></pre>`;
  $("who").textContent = user ? "Signed in as " + user + "." : "Not signed in.";
  $("call-api").addEventListener("click", callAPI);
};

const notFound: View = (root) => {
  root.innerHTML = `<h1>Not found</h1><p>No page at this path. <a href="/" data-link>Home</a></p>`;
};

async function callAPI(): Promise<void> {
  const out = $("api-result");
  out.dataset.status = "pending";
  try {
    const res = await tether.fetch(API, { cache: "no-store" });
    out.textContent = res.status + " " + (await res.text());
    out.dataset.status = String(res.status);
  } catch (err) {
    out.dataset.status = isTetherError(err) ? err.name : "error";
    out.textContent = isTetherError(err, "TetherReconnectRequired")
      ? "Sign in again (" + err.reason + ")."
      : isTetherError(err, "TetherUnavailable")
        ? "The provider is not answering; Tether retries in " + err.retryAfter + " s."
        : String(err);
  }
}

const session = await tether.session();
user = session.authenticated ? session.name ?? session.subject : "";
startRouter({ "/": home, "/settings/profile": profile }, notFound, $("view"));
showState();
document.body.dataset.ready = "true";
