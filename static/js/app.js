// LinkMsg's only script of its own: configuration for htmx. Everything works without it.
(function () {
  "use strict";

  // Every htmx request carries the CSRF token, as forms do in a hidden field.
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) {
      event.detail.headers["X-CSRFToken"] = meta.getAttribute("content");
    }
  });

  // After a swap, put focus where the new content is, for keyboard and screen reader users.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (!target) return;
    var focusable = target.querySelector("[data-autofocus], [aria-invalid='true']");
    if (focusable) focusable.focus();
  });
})();
