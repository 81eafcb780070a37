// Where the sign-in tab comes back to (the BFF's redirect to
// return_to=chrome-extension://<id>/signed-in.html): tell the service
// worker, which asks the BFF for the session's token and closes this tab.
"use strict";
chrome.runtime.sendMessage({ type: "signed-in" });
