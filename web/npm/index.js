// @tetherauth/tether: Tether's browser client as an ES module.
//
//   import { Tether } from "@tetherauth/tether";
//   const tether = await Tether.start({ bff: "/bff", apiOrigins: ["https://api.example"] });
//   const res = await tether.fetch("https://api.example/me");
//
// The API is tether.js's (see index.d.ts): this module loads the same
// files as the two script tags do, wasm_exec.js (the Go runtime's support,
// from the Go that built tether.wasm) and tether.js, and points start() at
// tether.wasm next to it through new URL("./tether.wasm", import.meta.url),
// which bundlers (Vite, webpack 5) emit as an asset with a fingerprinted
// name. Like the script tags, importing it defines globalThis.Go and
// globalThis.Tether. It never writes the token anywhere: see tether.js.
import "./wasm_exec.js";
import "./tether.js";

const classic = globalThis.Tether;
const wasm = new URL("./tether.wasm", import.meta.url);

/** Tether.start(options): see index.d.ts. */
export const Tether = Object.freeze({
  start(options) {
    const o = Object.assign({}, options);
    o.wasm = o.wasm ? String(o.wasm) : wasm.href;
    return classic.start(o);
  },
});

const names = ["TetherReconnectRequired", "TetherUnavailable", "TetherError"];

/** isTetherError(err, name?): see index.d.ts. */
export function isTetherError(err, name) {
  return err instanceof Error && (name === undefined ? names.includes(err.name) : err.name === name);
}

export default Tether;
