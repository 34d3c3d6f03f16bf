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

// ---- Review page: an opened checklist item follows its row -------------------------------
// An item's panel (decision, history, form) is fetched when it is first opened. When the
// row's state changes (a decision, a revision, the design moving on) the panel is fetched
// again: its record is replaced, and its form too unless it holds text not recorded yet;
// that form is kept with a notice that a newer revision exists, so recording it answers
// with a conflict that shows that revision and keeps the text (app/web/projects.py).
(function () {
  "use strict";

  var ITEM_STATE_ID = /^item-(\d+)-state$/;
  var ITEM_DETAILS_ID = /^item-(\d+)-details$/;
  var refreshing = {}; // item id -> true while its panel is fetched, "again" if it moved on since

  function rowKey(itemId) {
    var state = document.querySelector("#item-" + itemId + "-state [data-state]");
    return state ? state.getAttribute("data-state") + ":" + state.getAttribute("data-revision") : null;
  }

  function panelKey(itemId) {
    var shown = document.querySelector("#item-" + itemId + "-record [data-record-state]");
    return shown ? shown.getAttribute("data-record-state") + ":" + shown.getAttribute("data-record-revision") : null;
  }

  function followRow(itemId) {
    var shown = panelKey(itemId);
    if (shown === null || shown === rowKey(itemId)) {
      return; // never opened (it loads fresh when opened), or already current
    }
    if (refreshing[itemId]) {
      refreshing[itemId] = "again";
      return;
    }
    refreshing[itemId] = true;
    fetchPanel(itemId).then(function (html) {
      if (html !== null) {
        applyPanel(itemId, html);
      }
    }).finally(function () {
      var again = refreshing[itemId] === "again";
      delete refreshing[itemId];
      if (again) {
        followRow(itemId);
      }
    });
  }

  function fetchPanel(itemId) {
    var request = { headers: { "HX-Request": "true" }, credentials: "same-origin" };
    return fetch("/items/" + itemId, request).then(function (response) {
      // A redirect is the sign-in page, not the panel: leave the panel as it is.
      return response.ok && !response.redirected ? response.text() : null;
    }).catch(function () {
      return null;
    });
  }

  function applyPanel(itemId, html) {
    var panel = document.getElementById("item-" + itemId + "-panel");
    if (!panel) {
      return;
    }
    var fresh = document.createElement("template");
    fresh.innerHTML = html;
    var parts = fresh.content;
    replaceWith(panel.querySelector("#item-" + itemId + "-record"), parts.querySelector("#item-" + itemId + "-record"));
    replaceWith(panel.querySelector(".ask-model"), parts.querySelector(".ask-model"));
    var form = panel.querySelector("form.decision-form");
    var newForm = parts.querySelector("form.decision-form");
    if (form && newForm && formVersion(newForm) > formVersion(form)) {
      if (formGivesWay(form)) {
        replaceForm(form, newForm);
      } else {
        noteNewerRevision(form, formVersion(newForm));
      }
    }
  }

  function replaceWith(current, replacement) {
    if (current && replacement) {
      current.replaceWith(replacement);
      htmx.process(replacement);
    }
  }

  function formVersion(form) {
    var version = form.querySelector("input[name='version']");
    return version ? parseInt(version.value, 10) || 0 : 0;
  }

  // A form whose request is under way gets its answer; one with text not recorded keeps it.
  function formGivesWay(form) {
    return !form.classList.contains("htmx-request") && !holdsUnrecordedText(form);
  }

  function holdsUnrecordedText(form) {
    if (form.hasAttribute("data-unsaved")) {
      return true; // answered with a conflict or field errors: it holds what was sent
    }
    return Array.prototype.some.call(form.elements, function (field) {
      if (field.type === "radio" || field.type === "checkbox") {
        return field.checked !== field.defaultChecked;
      }
      return (field.tagName === "TEXTAREA" || field.type === "text") && field.value !== field.defaultValue;
    });
  }

  function replaceForm(form, newForm) {
    var focused = form.contains(document.activeElement) ? document.activeElement.id : null;
    replaceWith(form, newForm);
    var again = focused && document.getElementById(focused);
    if (again) {
      again.focus();
    }
  }

  function noteNewerRevision(form, revision) {
    var id = form.id.replace(/-form$/, "-newer");
    var note = document.getElementById(id);
    if (!note) {
      note = document.createElement("p");
      note.id = id;
      note.className = "flash";
      note.setAttribute("role", "status");
      form.insertBefore(note, form.querySelector("fieldset"));
    }
    note.textContent = "Revision " + revision + " was recorded while you were editing (shown above). " +
      "Your text is kept: recording it will first show you that revision, then you can record yours over it.";
  }

  // After the whole response is swapped: a decision's own answer brings the row, the record
  // and the form together, and the row alone must not send for the panel.
  function onSwap(event) {
    var match = event.target && event.target.id && ITEM_STATE_ID.exec(event.target.id);
    if (match) {
      setTimeout(followRow, 0, match[1]);
    }
  }

  document.addEventListener("htmx:afterSwap", onSwap);
  document.addEventListener("htmx:oobAfterSwap", onSwap);
  // A closed panel is brought up to date when it is opened again ("toggle" does not bubble).
  document.addEventListener("toggle", function (event) {
    var match = event.target.open && event.target.id && ITEM_DETAILS_ID.exec(event.target.id);
    if (match) {
      followRow(match[1]);
    }
  }, true);
})();
