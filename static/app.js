// designgate: a lost connection shows a banner; server failures show a readable message.
// No inline scripts anywhere (the Content-Security-Policy forbids them); this file is all.
(function () {
  "use strict";

  function banner() {
    return document.getElementById("connection-banner");
  }

  function showBanner(message) {
    var element = banner();
    if (element) {
      element.textContent = message;
      element.hidden = false;
    }
  }

  function hideBanner() {
    var element = banner();
    if (element) {
      element.hidden = true;
    }
  }

  function flash(message) {
    var region = document.getElementById("flash");
    if (!region) {
      return;
    }
    var box = document.createElement("div");
    box.className = "flash error";
    box.setAttribute("role", "alert");
    box.textContent = message;
    region.replaceChildren(box);
  }

  document.addEventListener("htmx:sendError", function () {
    showBanner("The server cannot be reached. Nothing you typed is lost: try again when the connection is back.");
  });
  document.addEventListener("htmx:sseError", function () {
    showBanner("Live updates lost their connection. Reconnecting\u2026");
  });
  document.addEventListener("htmx:sseOpen", hideBanner);
  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail && event.detail.xhr;
    if (xhr && xhr.status > 0) {
      hideBanner();
    }
  });
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail && event.detail.xhr;
    if (xhr && xhr.status >= 500 && xhr.status !== 503) {
      flash("The server failed to handle that (status " + xhr.status + "). Nothing you typed is lost; try again.");
    }
  });
  // A fresh message replaces the last one; clear it when the user acts again.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var region = document.getElementById("flash");
    var target = event.detail && event.detail.elt;
    if (region && target && !region.contains(target)) {
      region.replaceChildren();
    }
  });
})();

// ---- Session ended: the page stays, with what was typed; sign in again in a new tab. ----
// A live stream whose session has ended sends a "signed-out" event, and an htmx request of an
// ended session is answered with the same notice in #flash (app/web/errors.py). Coming back
// to this page once signed in again (in the other tab) fetches the new session's form token,
// so what was typed here can be sent as it is.
(function sessionEnded() {
  "use strict";

  function showNotice(html) {
    var region = document.getElementById("flash");
    if (region) {
      region.innerHTML = html; // rendered by the server's autoescaping templates
    }
  }

  document.addEventListener("htmx:sseOpen", function (event) {
    var source = event.detail && event.detail.source;
    if (!source || source.designgateSignedOut) {
      return;
    }
    source.designgateSignedOut = true;
    source.addEventListener("signed-out", function (message) {
      source.close(); // for good: reconnecting would only be refused again
      showNotice(message.data);
    });
  });

  function useToken(token) {
    var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    headers["X-CSRF-Token"] = token;
    document.body.setAttribute("hx-headers", JSON.stringify(headers));
    document.querySelectorAll("input[name='csrf_token']").forEach(function (input) {
      input.value = token;
    });
    document.querySelectorAll("[data-session-ended]").forEach(function (notice) {
      notice.removeAttribute("data-session-ended");
      notice.className = "flash";
      notice.setAttribute("role", "status");
      notice.textContent = "You are signed in again: send what you typed. Reload the page when you want live updates back.";
    });
  }

  function refreshToken() {
    if (!document.querySelector("[data-session-ended]")) {
      return;
    }
    fetch("/session/token", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.status === 200 ? response.json() : null;
      })
      .then(function (found) {
        if (found && found.csrf_token) {
          useToken(found.csrf_token);
        }
      })
      .catch(function () {});
  }

  window.addEventListener("focus", refreshToken);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      refreshToken();
    }
  });
})();
