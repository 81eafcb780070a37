// The whole public API of @tetherauth/tether as a TypeScript consumer uses
// it: `tsc --noEmit --strict` must accept this file. In mistakes(), each
// line after an expect-error directive is a mistake the types must catch:
// if it ever compiled, tsc would fail on the unused directive.
// e2e/types_test.go also compiles this file with the directives taken out
// and expects an error on exactly those lines.
import Default, {
  Tether,
  isTetherError,
  type AnyTetherError,
  type DegradedDetail,
  type TetherClient,
  type TetherEventMap,
  type TetherOptions,
  type TetherSession,
  type TetherState,
} from "@tetherauth/tether";

export async function everything(): Promise<void> {
  const options: TetherOptions = { bff: "/bff", apiOrigins: ["https://api.example"], wasm: new URL("https://cdn.example/tether.wasm") };
  const tether: TetherClient = await Tether.start(options);
  const same: TetherClient = await Default.start();
  const proxied: TetherClient = await Tether.start({ mode: "proxy", apis: { github: "https://api.github.com" } });
  void [same, proxied];

  const res: Response = await tether.fetch("https://api.example/me");
  await tether.fetch(new URL("https://api.example/me"), { method: "POST", body: JSON.stringify({ a: 1 }) });
  await tether.fetch(new Request("https://api.example/me"));

  const s: TetherState = tether.state();
  const connected: boolean = s.connected;
  const expiresAt: number = s.expiresAt;
  const reason: "" | "no_session" | "revoked" | "expired" | "signed_out" | "logged_out" = s.reason;

  const session: TetherSession = await tether.session();
  const who: string = session.authenticated ? session.subject : "nobody, " + (session.reason ?? "never signed in");

  tether.login();
  tether.login("/settings/profile");
  await tether.logout();
  tether.restart();

  tether.addEventListener("token", (e) => console.log(e.detail.expiresAt.toFixed()));
  tether.addEventListener("reconnect", (e) => {
    const r: "no_session" | "revoked" | "expired" | "signed_out" = e.detail.reason;
    void r;
  });
  tether.addEventListener("degraded", (e: TetherEventMap["degraded"]) => {
    const d: DegradedDetail = e.detail;
    console.log(d.reason, d.retryAfter * 1000);
  });
  tether.addEventListener("recovered", (e) => console.log(e.detail.reason === "rejected"));
  tether.addEventListener("logout", () => console.log("bye"), { once: true });
  const onToken = { handleEvent: (e: TetherEventMap["token"]) => console.log(e.detail.expiresAt) };
  tether.addEventListener("token", onToken);
  tether.removeEventListener("token", onToken);
  const asTarget: EventTarget = tether;
  void asTarget;

  try {
    await tether.fetch("https://api.example/me");
  } catch (err) {
    if (isTetherError(err, "TetherReconnectRequired")) {
      const r: "no_session" | "revoked" | "expired" | "signed_out" | "logged_out" = err.reason;
      void r;
    } else if (isTetherError(err, "TetherUnavailable")) {
      const wait: number = err.retryAfter;
      void wait;
    } else if (isTetherError(err)) {
      const any: AnyTetherError = err;
      void any;
    }
  }
  void [res, connected, expiresAt, reason, who];
}

export async function mistakes(tether: TetherClient): Promise<void> {
  // @ts-expect-error fetch takes a URL, a string or a Request, not a number
  await tether.fetch(42);
  // @ts-expect-error a misspelt event name
  tether.addEventListener("reconect", (e) => console.log(e));
  // @ts-expect-error degraded's detail has no expiresAt
  tether.addEventListener("degraded", (e) => console.log(e.detail.expiresAt));
  // @ts-expect-error a reconnect reason is one of four words
  tether.addEventListener("reconnect", (e) => e.detail.reason === "logged-out");
  // @ts-expect-error apiOrigins, not apiOrigin
  await Tether.start({ apiOrigin: ["https://api.example"] });
  // @ts-expect-error state() never holds the token
  console.log(tether.state().token);
  // @ts-expect-error login takes a path, not options
  tether.login({ returnTo: "/" });
  // @ts-expect-error an unauthenticated session has no subject
  console.log((await tether.session()).subject);
  // @ts-expect-error no such error name
  isTetherError(new Error(), "TetherTimeout");
  // @ts-expect-error proxy mode needs its apis
  await Tether.start({ mode: "proxy" });
  // @ts-expect-error apis belong to proxy mode
  await Tether.start({ apis: { github: "https://api.github.com" } });
}
