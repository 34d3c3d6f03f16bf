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
