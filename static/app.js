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
// so what was typed here can be sent as it is, and opens its live streams again.
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
    var root = event.target;
    source.addEventListener("signed-out", function (message) {
      source.close(); // reconnecting would only be refused again, until a new sign-in
      root.setAttribute("data-stream-ended", "");
      showNotice(message.data);
    });
  });

  // The sse extension binds each live part to its stream when the part is processed, and
  // htmx processes an element again only once its attributes change: so the stream's element
  // is marked and processed (a new stream, which sends every part afresh), then each part.
  function reopenStreams() {
    var mark = String(Date.now());
    document.querySelectorAll("[data-stream-ended]").forEach(function (root) {
      root.removeAttribute("data-stream-ended");
      root.setAttribute("data-reopened", mark);
      htmx.process(root);
      root.querySelectorAll("[sse-swap]").forEach(function (part) {
        part.setAttribute("data-reopened", mark);
        htmx.process(part);
      });
    });
  }

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
      notice.textContent = "You are signed in again: send what you typed; live updates are back.";
    });
    reopenStreams();
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

// ---- Review page: the checklist follows live changes -----------------------------------
// An opened item follows its row, and an item added after the page loaded gets its row.
//
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

  // What an item's row says of it, and what its loaded panel shows: "state:revision".
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
    return fetchFragment("/items/" + itemId);
  }

  // The fragment as htmx would get it, or null: a redirect is the sign-in page, and a failure
  // leaves the page as it is (the next change, or a reload, tries again).
  function fetchFragment(url) {
    var request = { headers: { "HX-Request": "true" }, credentials: "same-origin" };
    return fetch(url, request).then(function (response) {
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

  // Items added after the page loaded: a category's count lists its items (data-items, as
  // id:state:revision), and the row of any item missing from the page is fetched and put
  // in its place among them.
  var CATEGORY_STATE_ID = /^cat-(.+)-state$/;
  var fetchingRow = {}; // item id -> true while its row is fetched

  function listedItems(section) {
    var listed = section.querySelector("[id$='-state'] > [data-items]");
    var text = listed ? listed.getAttribute("data-items").trim() : "";
    return text ? text.split(/\s+/).map(function (entry) {
      var parts = entry.split(":");
      return { id: parts[0], key: parts[1] + ":" + parts[2] };
    }) : [];
  }

  function addMissingRows(categoryState) {
    var section = categoryState.closest("section.category");
    if (!section) {
      return;
    }
    listedItems(section).forEach(function (entry) {
      if (!document.getElementById("item-" + entry.id)) {
        fetchRow(section, entry.id);
      }
    });
  }

  function fetchRow(section, itemId) {
    if (fetchingRow[itemId]) {
      return;
    }
    fetchingRow[itemId] = true;
    fetchFragment("/items/" + itemId + "/row").then(function (html) {
      return html !== null && placeRow(section, itemId, html);
    }).finally(function () {
      delete fetchingRow[itemId];
    }).then(function (inserted) {
      // A change made between the row's read and its insertion reached no listener of the
      // row (it had none yet): the category's list says so, and the row is read again once.
      if (inserted && rowKey(itemId) !== listedKey(section, itemId)) {
        fetchRow(section, itemId);
      }
    });
  }

  function listedKey(section, itemId) {
    var found = listedItems(section).filter(function (entry) { return entry.id === itemId; })[0];
    return found ? found.key : null;
  }

  // The row goes after the nearest item listed before it that is on the page. A row already
  // there (read again) takes only the newer state: its panel may be open.
  function placeRow(section, itemId, html) {
    var fresh = document.createElement("template");
    fresh.innerHTML = html;
    var row = fresh.content.querySelector("article.item");
    var existing = document.getElementById("item-" + itemId);
    if (!row || existing) {
      var state = row && existing.querySelector("#item-" + itemId + "-state");
      if (state) {
        state.innerHTML = row.querySelector("#item-" + itemId + "-state").innerHTML;
      }
      return false;
    }
    var ids = listedItems(section).map(function (entry) { return entry.id; });
    var before = ids.slice(0, ids.indexOf(itemId)).reverse().map(function (id) {
      return section.querySelector("#item-" + id);
    }).filter(Boolean)[0];
    var anchor = before || section.querySelector("h3");
    anchor.after(row);
    htmx.process(row);
    section.hidden = false;
    return true;
  }

  // After the whole response is swapped: a decision's own answer brings the row, the record
  // and the form together, and the row alone must not send for the panel.
  function onSwap(event) {
    var id = event.target && event.target.id;
    var item = id && ITEM_STATE_ID.exec(id);
    if (item) {
      setTimeout(followRow, 0, item[1]);
    } else if (id && CATEGORY_STATE_ID.test(id)) {
      setTimeout(addMissingRows, 0, event.target);
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
