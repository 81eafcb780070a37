// Where the example extension's BFF and API are: the demo's (`make run`:
// the BFF on 127.0.0.1:8080, the dev provider's sample API on :9090).
// For your deployment, put your BFF's and API's URLs here and in
// manifest.json's host_permissions.
globalThis.TETHER_EXAMPLE = Object.freeze({
  bff: "http://127.0.0.1:8080/bff",
  api: "http://127.0.0.1:9090/api/me",
});
