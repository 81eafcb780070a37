// The example's content script, in the pages of host_permissions. A page
// may ask it, with window.postMessage({ tetherExample: "whoami" }), who is
// signed in to the extension; it asks the service worker for its one
// fixed API call and posts back the name and status only. Whatever a
// content script learns, the page's own scripts can read (they share the
// DOM and can message it), so it never gets a token: the worker does not
// give one out, to anyone.
"use strict";
window.addEventListener("message", (e) => {
  if (e.source !== window || e.data === null || typeof e.data !== "object" || e.data.tetherExample !== "whoami") return;
  chrome.runtime.sendMessage({ type: "call-api" }).then((r) => {
    window.postMessage({ tetherExample: "whoami-result", status: r.status || 0, name: r.name || "", error: r.error || "" }, location.origin);
  });
});
