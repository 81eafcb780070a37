// Types of @tetherauth/tether, written by hand for the API of tether.js
// (the glue around the WebAssembly client). The Tether repository's
// e2e/types_test.go checks them with `tsc --noEmit --strict` on the Vite
// example and on calls that must not compile.

/** Why the user must sign in again. */
export type ReconnectReason =
  /** The browser has no session, or the BFF does not know it. */
  | "no_session"
  /** The provider refused the refresh token (invalid_grant). */
  | "revoked"
  /** The session's refresh token expired, or the session sat idle too long. */
  | "expired"
  /** A logout ended the session (in this tab, another tab or another device). */
  | "signed_out";

/** ReconnectReason, or the client's own "logged_out" after logout(). */
export type StateReason = ReconnectReason | "logged_out";

/**
 * Why no token could be had for now: the BFF's error code, or "network"
 * when the BFF could not be reached or answered something unreadable.
 */
export type DegradedReason =
  | "provider_unavailable"
  | "storage_unavailable"
  | "too_many_refreshes"
  | "network"
  | (string & {});

/** What Tether.start takes in both modes. */
interface CommonOptions {
  /** The BFF's base path on this origin. Default "/bff". */
  bff?: string;
  /**
   * The origins (scheme://host[:port]) whose requests get
   * "Authorization: Bearer" in the page: no other URL ever sees the token.
   */
  apiOrigins?: readonly string[];
  /**
   * The WebAssembly client's URL. Default: the package's tether.wasm, as
   * the bundler emitted it.
   */
  wasm?: string | URL;
  /**
   * Hold the BFF's event stream (<bff>/events, an EventSource) while the
   * session lasts: when it ends anywhere (a logout in another tab or
   * browser, a revocation, the idle timeout, a back-channel logout, an
   * operator), "reconnect" fires at once with the reason, and API calls
   * reject with TetherReconnectRequired without a request. Default false.
   */
  live?: boolean;
  /**
   * The credentials mode of the requests to the BFF. Default
   * "same-origin"; "include" when the BFF is on another origin, as for a
   * browser extension's service worker (with bff an absolute URL).
   */
  credentials?: "same-origin" | "include";
}

/** Token mode (the default): the page holds the access token, in memory. */
export interface TokenModeOptions extends CommonOptions {
  mode?: "token";
  apis?: never;
}

/**
 * Proxy mode: calls under the apis' base URLs go to the BFF
 * (<bff>/api/<name>/...), which adds the token; the page holds none and,
 * without apiOrigins, loads no WebAssembly.
 */
export interface ProxyModeOptions extends CommonOptions {
  mode: "proxy";
  /** Route name (a-z, 0-9, - and _) -> the API's base URL, like { github: "https://api.github.com" }. */
  apis: Readonly<Record<string, string | URL>>;
}

/** What Tether.start takes. */
export type TetherOptions = TokenModeOptions | ProxyModeOptions;

/** tether.state(): a snapshot. */
export interface TetherState {
  /** A usable token is held. */
  connected: boolean;
  /** When it expires, Unix seconds; 0 when unknown or none. */
  expiresAt: number;
  /** The last token request failed; the client is backing off. */
  degraded: boolean;
  /** Why a reconnect is required; "" when it is not. */
  reason: StateReason | "";
}

/** The BFF's GET /bff/session. */
export type TetherSession =
  | {
      authenticated: false;
      /** Why not, when the BFF knows: a session that ended says how. */
      reason?: ReconnectReason;
    }
  | {
      authenticated: true;
      /** The provider's subject (user id). */
      subject: string;
      /** A display name, when the provider gave one. */
      name?: string;
      /** Unix seconds; absent when unknown. */
      access_expires_at?: number;
      /** Unix seconds; absent when unknown. */
      refresh_expires_at?: number;
    };

/** Event details: never a token. */
export interface TokenDetail {
  /** The new token's expiry, Unix seconds; 0 when unknown. */
  expiresAt: number;
}
export interface ReconnectDetail {
  reason: ReconnectReason;
}
export interface DegradedDetail {
  reason: DegradedReason;
  /** Seconds until the client tries again by itself. */
  retryAfter: number;
}
export interface RecoveredDetail {
  /** "degraded": the outage is over; "rejected": a new token after an API's 401. */
  reason: "degraded" | "rejected";
}
export type LogoutDetail = Record<string, never>;

/** The events a Tether client dispatches (CustomEvent). */
export interface TetherEventMap {
  /** A new token. */
  token: CustomEvent<TokenDetail>;
  /** The grant is gone: API calls reject with TetherReconnectRequired until login(). */
  reconnect: CustomEvent<ReconnectDetail>;
  /** The BFF or the provider failed; the client retries by itself. */
  degraded: CustomEvent<DegradedDetail>;
  /** The outage is over, or a new token came after an API's 401. */
  recovered: CustomEvent<RecoveredDetail>;
  /** logout() is done. */
  logout: CustomEvent<LogoutDetail>;
}

/** The names of the events. */
export type TetherEventType = keyof TetherEventMap;

/** What Tether.start resolves to. */
export interface TetherClient extends EventTarget {
  /**
   * window.fetch's contract. For an API origin it adds the access token
   * (and, after a 401, gets a new one and retries once when the body can
   * be sent again); other URLs are fetched untouched. It rejects with a
   * TetherReconnectRequired or TetherUnavailable when no token can be had,
   * or with fetch's own TypeError.
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** A snapshot of the client's state. */
  state(): TetherState;
  /**
   * Leaves for the BFF's login, which returns to returnTo, a path on this
   * origin (default: the current path, query and hash).
   */
  login(returnTo?: string): void;
  /** Ends the session at the BFF (and the provider), then dispatches "logout". */
  logout(): Promise<void>;
  /** The BFF's view of the session. */
  session(): Promise<TetherSession>;
  /** Forgets a reconnect and asks for a token again. */
  restart(): void;

  addEventListener<K extends TetherEventType>(
    type: K,
    listener: (this: TetherClient, ev: TetherEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener<K extends TetherEventType>(
    type: K,
    listener: { handleEvent(ev: TetherEventMap[K]): unknown },
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends TetherEventType>(
    type: K,
    listener: (this: TetherClient, ev: TetherEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener<K extends TetherEventType>(
    type: K,
    listener: { handleEvent(ev: TetherEventMap[K]): unknown },
    options?: boolean | EventListenerOptions,
  ): void;
}

/** The entry point. */
export interface TetherStatic {
  /**
   * Loads the WebAssembly client and starts it. A second call returns the
   * same client; after a failure, a call tries again.
   */
  start(options?: TetherOptions): Promise<TetherClient>;
}

export declare const Tether: TetherStatic;
export default Tether;

/** The grant is gone: the user must sign in again (tether.login()). */
export interface TetherReconnectRequired extends Error {
  name: "TetherReconnectRequired";
  reason: StateReason;
  retryAfter: 0;
}

/** No token for now (an outage, or the BFF unreachable); the client retries by itself. */
export interface TetherUnavailable extends Error {
  name: "TetherUnavailable";
  reason: DegradedReason;
  /** Seconds until the client tries again. */
  retryAfter: number;
}

/** Anything else that went wrong in the client. */
export interface TetherError extends Error {
  name: "TetherError";
  reason: "";
  retryAfter: 0;
}

/** The errors tether.fetch rejects with, besides fetch's own. */
export type AnyTetherError = TetherReconnectRequired | TetherUnavailable | TetherError;

/** The names of the errors. */
export type TetherErrorName = AnyTetherError["name"];

/** Tells a Tether error from others (they are Errors told apart by name). */
export declare function isTetherError(err: unknown): err is AnyTetherError;
/** Tells a Tether error of one name from others. */
export declare function isTetherError<N extends TetherErrorName>(
  err: unknown,
  name: N,
): err is Extract<AnyTetherError, { name: N }>;
