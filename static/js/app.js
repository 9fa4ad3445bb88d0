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

  // A message can arrive twice on the same page: from the send's own response and from
  // the live stream (or a replay). Keep the first copy.
  function dropDuplicateMessages() {
    var seen = {};
    document.querySelectorAll('li[data-testid="message"][id]').forEach(function (item) {
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

  // After a swap, put focus where the new content is, for keyboard and screen reader users.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (!target || target.id === "live") return;
    var focusable = target.querySelector("[data-autofocus], [aria-invalid='true']");
    if (focusable) focusable.focus();
  });
})();
