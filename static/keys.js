/* Pigeonhole workspace keyboard shortcuts, and rows that open their conversation when clicked.
 *
 * j / k      next / previous conversation (the inbox list's rows; on a conversation page, the
 *            neighbours in the list it was opened from, remembered in sessionStorage)
 * Enter, o   open the current row        r / a / f   Reply / Reply All / Forward
 * c          New Mail                    e           Resolve        #   Assign to me
 * /          Search (from a conversation: in the list it was opened from)
 * ?          the list of shortcuts (a modal <dialog>)
 * Ctrl/⌘+Enter  Send (in a composer)     Esc         close: a dialog, else the composer
 *
 * No single-key shortcut acts while the focus is in a field (input, textarea, select, the
 * editor) or with Ctrl/Alt/⌘ held; Ctrl/⌘+Enter and Esc do. No inline script (CSP).
 */
(function () {
  "use strict";

  var LIST_KEY = "ph-inbox-list";  // the ids and links of the rows last listed, for j/k in a conversation

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  function typing(el) {
    if (!el || !el.closest) return false;
    return !!el.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']");
  }

  /* --- The "?" overlay ------------------------------------------------------------------ */

  function shortcutsDialog() { return document.getElementById("shortcuts"); }

  function openShortcuts() {
    var dialog = shortcutsDialog();
    if (dialog && !dialog.open) dialog.showModal();
  }

  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("[data-shortcuts]")) openShortcuts();
  });

  /* --- The inbox list: the current row, and rows that open when clicked ------------------- */

  function rows() { return $all("#conversation-rows .conv-row"); }
  function rowLink(row) { return row ? $(".subject a", row) : null; }

  function currentRow() { return $("#conversation-rows .conv-row.is-current"); }

  function setCurrent(row) {
    rows().forEach(function (r) { r.classList.remove("is-current"); });
    if (!row) return;
    row.classList.add("is-current");
    var link = rowLink(row);
    if (link) link.focus();  // the real link has the focus: Enter opens it, a screen reader reads it
    row.scrollIntoView({ block: "nearest" });
  }

  function moveInList(step) {
    var all = rows();
    if (!all.length) return;
    var focused = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest(".conv-row") : null;
    var at = all.indexOf(focused || currentRow());
    var next = at < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, at + step));
    setCurrent(all[next]);
  }

  function rememberList() {
    var list = rows().map(function (r) { var a = rowLink(r); return a ? a.getAttribute("href") : null; })
      .filter(Boolean);
    if (!list.length) return;
    var state = { page: window.location.pathname + window.location.search, rows: list };
    try { sessionStorage.setItem(LIST_KEY, JSON.stringify(state)); } catch (err) { /* ignore */ }
  }

  /* A click anywhere on a row opens its conversation (the subject stays a real link). */
  document.addEventListener("click", function (e) {
    if (e.defaultPrevented || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    var row = e.target.closest ? e.target.closest("#conversation-rows .conv-row") : null;
    if (!row || e.target.closest("a, button, input, select, textarea, label")) return;
    if (window.getSelection && String(window.getSelection())) return;  // selecting text is not a click
    var link = rowLink(row);
    if (link) { rememberList(); window.location.href = link.href; }
  });
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("#conversation-rows .subject a")) rememberList();
  });

  /* On a conversation page: the neighbour in the list it was opened from. */
  function rememberedList() {
    try { return JSON.parse(sessionStorage.getItem(LIST_KEY) || "null") || { rows: [] }; } catch (err) { return { rows: [] }; }
  }

  function neighbour(step) {
    var list = rememberedList().rows || [];
    var at = list.indexOf(window.location.pathname);
    if (at < 0) return null;
    return list[at + step] || null;
  }

  /* --- Actions on a conversation ------------------------------------------------------------ */

  function clickCompose(label) {
    var bar = $(".compose-bar");
    if (!bar) return false;
    var button = $all("button", bar).filter(function (b) { return b.textContent.trim() === label; })[0];
    if (button && !button.disabled) { button.click(); return true; }
    return false;
  }

  function resolve() {
    var select = $("#actions select[name='status']");
    if (!select || select.value === "resolved") return false;
    select.value = "resolved";
    var form = select.closest("form");
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
    return true;
  }

  function assignToMe() {
    var input = $("#actions input[name='assignee'][value='me']");
    var button = input ? $("button[type='submit']", input.closest("form")) : null;
    if (button && !button.disabled) { button.click(); return true; }
    return false;
  }

  function newMail() {
    var form = $("form.shortcut-new-mail");
    if (form) { form.submit(); return true; }
    return false;
  }

  function search() {
    var field = document.getElementById("filter-q");
    if (field) { field.focus(); field.select(); return true; }
    var form = $("form.shortcut-new-mail");
    if (!form) return false;
    window.location.href = (rememberedList().page || form.getAttribute("data-inbox-url")) + "#filter-q";
    return true;
  }

  function send(composer) {
    var button = composer ? $(".send-button", composer) : null;
    if (button && !button.disabled) { button.click(); return true; }
    return false;
  }

  function closeComposer(composer) {
    var button = composer ? $("[data-close-composer]", composer) : null;
    if (button) { button.click(); return true; }
    return false;
  }

  /* --- The keys ------------------------------------------------------------------------------ */

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.isComposing) return;
    var target = e.target;
    var composer = target.closest ? target.closest(".composer") : null;

    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !e.altKey) {
      if (send(composer || $(".composer"))) e.preventDefault();
      return;
    }
    if (e.key === "Escape") {
      if ($("dialog[open]")) return;  // the dialog closes itself (or inbox.js closes it)
      if (composer && closeComposer(composer)) { e.preventDefault(); return; }
      if (target.id === "filter-q" || (currentRow() && target.closest && target.closest(".conv-row"))) {
        target.blur();
        rows().forEach(function (r) { r.classList.remove("is-current"); });
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || typing(target) || $("dialog[open]")) return;

    var handled = false;
    switch (e.key) {
      case "?": openShortcuts(); handled = true; break;
      case "j": case "k":
        if (rows().length) { moveInList(e.key === "j" ? 1 : -1); handled = true; }
        else if ($("#conversation")) {
          var href = neighbour(e.key === "j" ? 1 : -1);
          if (href) { window.location.href = href; }
          handled = true;
        }
        break;
      case "o": case "Enter":
        var row = currentRow();
        if (e.key === "Enter" && !(target === document.body || (row && row.contains(target)))) break;
        if (row && rowLink(row)) {
          if (e.key === "Enter" && target === rowLink(row)) { rememberList(); return; }  // the link opens itself
          rememberList();
          window.location.href = rowLink(row).href;
          handled = true;
        }
        break;
      case "r": handled = clickCompose("Reply"); break;
      case "a": handled = clickCompose("Reply All"); break;
      case "f": handled = clickCompose("Forward"); break;
      case "c": handled = newMail(); break;
      case "e": handled = resolve(); break;
      case "#": handled = assignToMe(); break;
      case "/": handled = search(); break;
    }
    if (handled) e.preventDefault();
  });

  /* "/" from a conversation page lands on the list it came from with the search field ready. */
  document.addEventListener("DOMContentLoaded", function () {
    if (window.location.hash === "#filter-q") {
      var field = document.getElementById("filter-q");
      if (field) field.focus();
    }
  });
})();
