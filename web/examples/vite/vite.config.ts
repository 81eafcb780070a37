import { defineConfig } from "vite";

// Split-host development: this dev server serves the SPA and proxies /bff
// to the BFF on its own port, so the browser sees one origin (the BFF's
// cookie, X-CSRF and the login redirects all stay on it). Start the BFF
// with TETHER_PUBLIC_URL set to this server's origin (README: "Add Tether
// to your app").
const bff = process.env.TETHER_BFF_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  server: {
    host: "127.0.0.1",
    port: 5173,
    strictPort: true,
    proxy: { "/bff": { target: bff } },
  },
  // The package loads tether.wasm next to its module; pre-bundling would
  // move the module away from it.
  optimizeDeps: { exclude: ["@tetherauth/tether"] },
  build: { target: "es2022" },
});
