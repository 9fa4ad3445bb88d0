// LinkMsg's only script of its own: htmx configuration and the live stream's upkeep.
// Every feature works without it.
(function () {
  "use strict";

  // Every htmx request carries the CSRF token, as forms do in a hidden field.
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) {
      event.detail.headers["X-CSRFToken"] = meta.getAttribute("content");
    }
  });

  // A boosted navigation swaps the body and keeps the old <head>, so the token above would
  // stay the one of the first page loaded — the login page's, from before the session
  // started. Take the new page's token as its body goes in.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var text = event.detail.serverResponse;
    if (typeof text !== "string" || text.indexOf('name="csrf-token"') < 0) return;
    var fresh = new DOMParser().parseFromString(text, "text/html")
      .querySelector('meta[name="csrf-token"]');
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (fresh && meta) meta.setAttribute("content", fresh.getAttribute("content"));
  });

  // The server renders a response's or a live event's out-of-band pieces for every page
  // that may be open (the inbox's row, the open thread's list, the notifications page);
  // each page takes the pieces whose target it has. htmx would drop the others anyway but
  // log each as an error: they are dropped here, before htmx sees them.
  function oobTarget(piece) {
    var value = piece.getAttribute("hx-swap-oob");
    var colon = value.indexOf(":");
    if (colon > 0) return document.querySelector(value.slice(colon + 1));
    return piece.id ? document.getElementById(piece.id) : null;
  }

  function withoutAbsentTargets(text) {
    // A whole page (a boosted navigation) carries no pieces; leave it as it came.
    if (typeof text !== "string" || text.indexOf("hx-swap-oob") < 0 || /<body[\s>]/i.test(text)) {
      return text;
    }
    var parsed = document.createElement("template");
    parsed.innerHTML = text;
    var dropped = false;
    parsed.content.querySelectorAll("[hx-swap-oob]").forEach(function (piece) {
      if (!oobTarget(piece)) {
        piece.remove();
        dropped = true;
      }
    });
    return dropped ? parsed.innerHTML : text;
  }

  // On <body hx-ext="present-targets">: every htmx response and every live event's swap
  // passes through it.
  htmx.defineExtension("present-targets", {
    transformResponse: function (text) {
      return withoutAbsentTargets(text);
    }
  });

  // htmx looks up a response's out-of-band pieces under the element that made the
  // request. When a live update replaced that element meanwhile (a row's menu, after the
  // row's own event arrived first), the lookup ran in the detached old subtree and missed
  // everything. Answers made only of out-of-band pieces (forms marked data-oob-only) are
  // idempotent: apply them to the document again.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var origin = event.target;
    if (!origin.hasAttribute || !origin.hasAttribute("data-oob-only")) return;
    // Listened on the element itself: once detached, its events no longer bubble up here.
    // htmx's own swap would look in the detached subtree, find no target and log each
    // piece as an error: it is skipped, and the pieces applied below.
    origin.addEventListener("htmx:beforeSwap", function (before) {
      if (!origin.isConnected) before.detail.shouldSwap = false;
    }, { once: true });
    origin.addEventListener("htmx:afterRequest", function (after) {
      var detail = after.detail || {};
      if (!origin.isConnected && detail.successful && detail.xhr) {
        htmx.swap(document.body, withoutAbsentTargets(detail.xhr.responseText), {
          swapStyle: "none"
        });
      }
    }, { once: true });
  });

  // Menus made of <details> (the Me menu, a row's "⋯", the label picker) close on Escape
  // and on a click elsewhere, as menus do; without JavaScript they simply stay open.
  function closeMenus(except) {
    document.querySelectorAll("details[open]").forEach(function (menu) {
      if (menu !== except && !menu.contains(except)) menu.removeAttribute("open");
    });
  }
  document.addEventListener("click", function (event) {
    closeMenus(event.target.closest ? event.target.closest("details") : null);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = event.target.closest && event.target.closest("details[open]");
    if (open) {
      open.removeAttribute("open");
      var summary = open.querySelector("summary");
      if (summary) summary.focus();
    }
  });

  // Message times are written in UTC (the server does not know the reader's time zone);
  // where JavaScript runs they are shown in the reader's own time. A message's time has a
  // short visible form and a full one for screen readers.
  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (element) {
      var when = new Date(element.getAttribute("datetime"));
      if (isNaN(when.getTime())) return;
      var short = element.querySelector(".time-short");
      var full = element.querySelector(".time-full");
      if (short && full) {
        short.textContent = when.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
        full.textContent = when.toLocaleString(undefined, { dateStyle: "long", timeStyle: "short" });
      } else {
        element.textContent = when.toLocaleString(undefined, {
          month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"
        });
      }
      element.title = when.toString();
      element.removeAttribute("data-local");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  document.addEventListener("htmx:load", function () { localTimes(document); });

  // The Messaging list marks the row of the conversation open beside it. The server marks
  // it in the page; a conversation chosen in the list (the right pane swapped), a filter
  // (the list swapped) or a live event (a row replaced, or moved to the top) changes
  // what is open or which element is the row: mark it again after each.
  function markOpenThread() {
    var open = document.querySelector('#conversation-pane [data-testid="thread"]');
    var id = open ? open.getAttribute("data-thread-id") : null;
    document.querySelectorAll(".list-pane .thread-link").forEach(function (link) {
      var row = link.closest("[data-thread-id]");
      if (row && id !== null && row.getAttribute("data-thread-id") === id) {
        link.setAttribute("aria-current", "page");
      } else {
        link.removeAttribute("aria-current");
      }
    });
  }
  document.addEventListener("htmx:load", markOpenThread);

  // A message can arrive twice on the same page: from the send's own response and from
  // the live stream (or a replay), and so can the day separator before it; a page of
  // older messages brings the separator of a day already shown. Keep the first copy.
  function dropDuplicateMessages() {
    var seen = {};
    var items = 'li[data-testid="message"][id], li[data-testid="day-separator"][id]';
    document.querySelectorAll(items).forEach(function (item) {
      if (seen[item.id]) {
        item.remove();
      } else {
        seen[item.id] = true;
      }
    });
  }

  // Whichever way a message is inserted (a swap, an out-of-band swap, a replay), the
  // duplicate goes as soon as it lands.
  new MutationObserver(function (mutations) {
    for (var i = 0; i < mutations.length; i++) {
      if (mutations[i].addedNodes.length) {
        dropDuplicateMessages();
        return;
      }
    }
  }).observe(document.documentElement, { childList: true, subtree: true });

  document.addEventListener("htmx:sseMessage", function (event) {
    var message = event.detail;
    if (message && message.type === "reload") {
      // The stream could not replay what was missed: the page is rendered afresh.
      window.location.reload();
      return;
    }
    if (message && message.type === "ended") {
      // This login ended (logged out here or elsewhere, password changed, suspended).
      // When this tab logged out, its own navigation is under way and replaces the
      // page: leave it be. Otherwise go to the login page.
      var ended = document.getElementById("live");
      window.setTimeout(function () {
        if (ended && ended.isConnected) window.location.assign("/login");
      }, 1500);
      return;
    }
    if (message && message.type === "superseded") {
      // The member opened too many pages: this one stops listening (the server closed it).
      var stale = document.getElementById("live");
      if (stale) stale.remove();
      return;
    }
    dropDuplicateMessages();
    // htmx-ext-sse reconnects with the URL it started with; keep that URL's resume
    // point current so a reconnect replays only what this page has not seen.
    var live = document.getElementById("live");
    if (live && message && message.lastEventId) {
      var url = new URL(live.getAttribute("sse-connect"), window.location.href);
      url.searchParams.set("last_event_id", message.lastEventId);
      live.setAttribute("sse-connect", url.pathname + url.search);
    }
  });

  // Upload progress for forms with files (htmx reports it; without JS the browser does).
  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = event.target.closest ? event.target.closest("form") : null;
    var bar = form ? form.querySelector(".upload-progress") : null;
    if (!bar || !event.detail.lengthComputable) return;
    bar.hidden = false;
    bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
  });

  // Whatever the answer (sent, refused, too many requests, a network error), the bar goes:
  // it shows an upload under way, not the last one.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target.closest ? event.target.closest("form") : null;
    var bar = form ? form.querySelector(".upload-progress") : null;
    if (!bar) return;
    bar.hidden = true;
    bar.value = 0;
  });

  // The composer (the reply box and the new-message form). Without JavaScript it is a
  // textarea, a native file input and a Send button, and the server refuses what is too long.
  function composerPieces(form) {
    return {
      body: form.querySelector("textarea[data-max-chars]"),
      counter: form.querySelector(".char-counter"),
      error: form.querySelector(".composer-error")
    };
  }

  function characters(text) {
    return Array.from(text.trim()).length;
  }

  // The counter shows from 90% of the limit; past it, it says by how much.
  function updateCounter(textarea) {
    var pieces = composerPieces(textarea.form);
    if (!pieces.counter) return;
    var limit = Number(textarea.getAttribute("data-max-chars"));
    var used = characters(textarea.value);
    var over = used > limit;
    pieces.counter.hidden = used < limit * 0.9;
    pieces.counter.classList.toggle("over", over);
    pieces.counter.textContent = over
      ? (used - limit).toLocaleString() + " characters over the " + limit.toLocaleString() + " limit"
      : used.toLocaleString() + " / " + limit.toLocaleString();
    if (!over && pieces.error) pieces.error.hidden = true;
  }

  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches("textarea[data-max-chars]")) {
      updateCounter(event.target);
    }
  });

  // A message over the limit is not sent: the reason shows by the box, which keeps the text.
  // Listened in the capture phase, before htmx or the browser sends the form.
  document.addEventListener("submit", function (event) {
    var pieces = composerPieces(event.target);
    if (!pieces.body || !pieces.error) return;
    var limit = Number(pieces.body.getAttribute("data-max-chars"));
    var used = characters(pieces.body.value);
    if (used <= limit) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    pieces.error.textContent = "Your message can be at most " + limit.toLocaleString() +
      " characters (this one has " + used.toLocaleString() + "). Shorten it to send.";
    pieces.error.hidden = false;
    pieces.body.setAttribute("aria-invalid", "true");
    pieces.body.focus();
  }, true);

  // What the member types while a message is on its way stays in the box. The answer to
  // a send renews the reply form (a new key, the box emptied), often after a live event
  // has shown the message already: the new box keeps what was typed since Send was
  // pressed — all of it if the box was rewritten, what follows the sent text if the
  // member typed on after it.
  var sentBodies = new WeakMap();
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("[data-testid=reply-form]")) return;
    var box = composerPieces(form).body;
    if (box) sentBodies.set(form, box.value);
  });
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var old = event.detail.target;
    if (!old || old.id !== "reply" || !event.detail.fragment) return;
    var form = old.querySelector("[data-testid=reply-form]");
    var box = form && composerPieces(form).body;
    if (!box) return;
    // Renewed by something else than this form's send (an InMail's answer, live): the
    // box keeps all of it.
    var sent = sentBodies.has(form) ? sentBodies.get(form) : "";
    var typed = box.value;
    var left = typed.indexOf(sent) === 0 ? typed.slice(sent.length).replace(/^\s+/, "") : typed;
    var fresh = event.detail.fragment.querySelector("textarea[data-max-chars]");
    if (left && fresh) fresh.textContent = left;
  });
  // A send that failed (refused, too many, the network) sent nothing: what the box holds
  // is all still to send.
  document.addEventListener("htmx:afterRequest", function (event) {
    if (!event.detail.successful) sentBodies.delete(event.target);
  });
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var box = document.querySelector("#reply textarea[data-max-chars]");
    if (event.detail.target && event.detail.target.id === "reply" && box && box.value) {
      box.setSelectionRange(box.value.length, box.value.length);  // typing goes on at the end
      updateCounter(box);
    }
  });

  // Enter sends, Shift+Enter starts a new line (as do Enter while composing an accented
  // or East Asian character).
  document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (event.key !== "Enter" || !box.matches || !box.matches("textarea[data-enter-sends]")) return;
    if (event.shiftKey || event.altKey || event.ctrlKey || event.metaKey || event.isComposing) return;
    event.preventDefault();
    if (box.form) box.form.requestSubmit();
  });

  // The paperclip opens the file picker; chosen files show as chips with their size, each
  // with a button that takes it out of the input.
  function humanSize(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return Math.round(bytes / 1024) + " KB";
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  function showChips(input) {
    var field = input.closest(".file-field");
    var list = field && field.querySelector(".file-chips");
    if (!list) return;
    list.replaceChildren();
    Array.from(input.files).forEach(function (file, index) {
      var chip = document.createElement("li");
      chip.className = "file-chip";
      chip.setAttribute("data-testid", "file-chip");
      var name = document.createElement("span");
      name.className = "file-chip-name";
      name.textContent = file.name;
      var size = document.createElement("span");
      size.className = "muted small";
      size.textContent = humanSize(file.size);
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "file-chip-remove";
      remove.setAttribute("data-testid", "remove-file");
      remove.setAttribute("aria-label", "Remove " + file.name);
      remove.textContent = "×";
      remove.addEventListener("click", function () {
        var kept = new DataTransfer();
        Array.from(input.files).forEach(function (other, at) {
          if (at !== index) kept.items.add(other);
        });
        input.files = kept.files;
        showChips(input);
        var button = field.querySelector(".attach-button");
        if (button) button.focus();
      });
      chip.append(name, " ", size, remove);
      list.append(chip);
    });
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches(".file-field input[type=file]")) {
      showChips(event.target);
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".attach-button") : null;
    if (!button) return;
    var input = button.closest(".file-field").querySelector("input[type=file]");
    if (input) input.click();
  });

  // With JavaScript the paperclip and the chips stand in for the native control.
  function enhanceComposers(root) {
    root.querySelectorAll(".file-field:not(.enhanced)").forEach(function (field) {
      field.classList.add("enhanced");
      var button = field.querySelector(".attach-button");
      if (button) button.hidden = false;
    });
    root.querySelectorAll("[data-js-only]").forEach(function (element) {
      element.hidden = false;
    });
  }
  document.addEventListener("DOMContentLoaded", function () { enhanceComposers(document); });
  document.addEventListener("htmx:load", function () { enhanceComposers(document); });

  // After a swap, put focus where the new content is, for keyboard and screen reader users.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (!target || target.id === "live") return;
    var focusable = target.querySelector("[data-autofocus], [aria-invalid='true']");
    if (focusable) focusable.focus();
  });

  // A swap must not drop keyboard focus to the start of the document.
  // - A boosted navigation is a new page: focus goes where loading that page puts the
  //   reading position, on the element its #fragment names (a conversation opens at its
  //   reply box) or else on the main content, so that the next Tab goes into the page.
  // - Any other swap that removed the focused element (the reply form is renewed after
  //   each send, a conversation's row is replaced when a message arrives) puts focus on
  //   the same control in what replaced it, or on that content's first control.
  var FOCUSABLE = "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), " +
    "select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex='-1'])";
  var lastFocused = null;

  document.addEventListener("focusin", function (event) {
    lastFocused = event.target;
  });
  document.addEventListener("focusout", function (event) {
    var element = event.target;
    setTimeout(function () {
      // Focus left on purpose (a click on the page's background), not by a swap or by
      // htmx disabling the button while its request runs.
      var left = element === lastFocused && element.isConnected && !element.disabled;
      if (left && focusLost()) lastFocused = null;
    }, 0);
  });

  function focusLost() {
    var active = document.activeElement;
    return !active || active === document.body || !active.isConnected;
  }

  // Focus a reading position that is not a control (a fragment's target, <main>): the
  // next Tab continues from there. The temporary tabindex goes when focus moves on.
  // `options` as for element.focus().
  function placeFocus(element, options) {
    if (element.matches(FOCUSABLE)) {
      element.focus(options);
      return;
    }
    if (!element.hasAttribute("tabindex")) {
      element.setAttribute("tabindex", "-1");
      element.addEventListener("blur", function () {
        element.removeAttribute("tabindex");
      }, { once: true });
    }
    element.focus(options);
  }

  // The control in `container` that stands for `old` (same test hook, name or link).
  function counterpart(container, old) {
    var keys = [["data-testid"], ["name", "value"], ["href"]];
    for (var i = 0; i < keys.length; i++) {
      var selector = old.tagName.toLowerCase();
      var usable = true;
      keys[i].forEach(function (attribute) {
        var value = old.getAttribute(attribute);
        if (value === null) usable = false;
        else selector += "[" + attribute + '="' + CSS.escape(value) + '"]';
      });
      if (usable) {
        var found = container.querySelector(selector);
        if (found) return found;
      }
    }
    return container.matches(FOCUSABLE) ? container : container.querySelector(FOCUSABLE);
  }

  function restoreFocus(detail) {
    var boosted = detail && detail.boosted;
    // A boosted link aimed at a part of the page (a conversation chosen in the Messaging
    // list) opens that part as a link opens a page: the reading position moves into it,
    // though the link clicked is still there.
    var intoPart = boosted && detail.target && detail.target !== document.body;
    if (!focusLost() && !intoPart) return;
    if (boosted) {
      var anchor = detail.pathInfo && detail.pathInfo.anchor;
      var named = anchor && document.getElementById(anchor);
      var main = intoPart ? detail.target : document.getElementById("main");
      // A new page opens at its top: focusing <main> must not scroll it (that would hide
      // its first lines under the sticky header).
      if (named) placeFocus(named);
      else if (main) placeFocus(main, { preventScroll: true });
      return;
    }
    var old = lastFocused;
    if (!old || old.isConnected) return;
    for (var node = old; node; node = node.parentElement) {
      var replacement = node.id && document.getElementById(node.id);
      if (replacement) {
        var control = node === old ? replacement : counterpart(replacement, old);
        if (control) control.focus();
        else placeFocus(replacement);
        return;
      }
    }
  }

  // Several elements settle per response (out-of-band pieces too); act once they all have.
  // A navigation's settling outranks a live event's that came in the same turn.
  var pending = null;
  function restoreFocusSoon(event) {
    var detail = event.detail;
    if (pending) {
      if (detail && detail.boosted) pending.detail = detail;
      return;
    }
    pending = { detail: detail };
    setTimeout(function () {
      var settled = pending.detail;
      pending = null;
      restoreFocus(settled);
    }, 0);
  }
  document.addEventListener("htmx:afterSettle", restoreFocusSoon);
  document.addEventListener("htmx:sseMessage", restoreFocusSoon);
})();
