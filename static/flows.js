// Flows pages: open <dialog data-modal> elements that HTMX swapped in, close them with
// [data-close-dialog] buttons. No inline script (CSP script-src 'self').
(function () {
  "use strict";
  function openDialogs(root) {
    (root || document).querySelectorAll("dialog[data-modal]").forEach(function (dialog) {
      if (!dialog.open) { dialog.showModal(); }
    });
  }
  document.addEventListener("htmx:afterSettle", function (event) { openDialogs(event.detail.elt); });
  document.addEventListener("DOMContentLoaded", function () { openDialogs(document); });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-close-dialog]");
    if (button) {
      var dialog = button.closest("dialog");
      if (dialog) { dialog.close(); dialog.remove(); }
    }
  });
})();
