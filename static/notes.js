// Internal notes on the conversation page (docs/workspace.md, "Contacts and notes"):
// - shows Edit/Delete on the viewer's own notes (Delete on any note to admins); the tiles are cached
//   for everyone, so they come hidden and the server checks again;
// - @mention suggestions in the note fields: colleagues who may see the conversation, from
//   #contact-panel's data-mentions-url; ArrowUp/ArrowDown choose, Enter or Tab insert, Escape closes.
(function () {
  "use strict";

  function panel() { return document.getElementById("contact-panel"); }

  function showTools(root) {
    var p = panel();
    if (!p) return;
    var me = p.dataset.viewerId, admin = p.dataset.viewerAdmin === "1";
    (root || document).querySelectorAll(".note-tools[hidden]").forEach(function (tools) {
      var mine = tools.dataset.noteAuthor === me;
      if (!mine && !admin) return;
      var edit = tools.querySelector(".note-edit");
      if (edit && !mine) edit.remove();
      tools.hidden = false;
    });
  }

  var box = null, field = null, items = [], active = -1, timer = null, seq = 0;

  function close() {
    if (box) box.remove();
    box = null; items = []; active = -1;
    if (field) field.removeAttribute("aria-activedescendant");
  }

  function wordAtCaret(el) {
    var before = el.value.slice(0, el.selectionStart);
    var m = /(^|[^\w@.])@([\w.+-]*)$/.exec(before);
    return m ? { start: before.length - m[2].length - 1, query: m[2] } : null;
  }

  function insert(handle) {
    var w = wordAtCaret(field);
    if (!w) return close();
    var end = field.selectionStart;
    field.value = field.value.slice(0, w.start) + "@" + handle + " " + field.value.slice(end);
    var caret = w.start + handle.length + 2;
    field.setSelectionRange(caret, caret);
    field.focus();
    close();
  }

  function highlight(i) {
    active = i;
    items.forEach(function (li, j) { li.setAttribute("aria-selected", j === i ? "true" : "false"); });
    if (items[i]) field.setAttribute("aria-activedescendant", items[i].id);
  }

  function show(list) {
    close();
    if (!list.length) return;
    box = document.createElement("ul");
    box.className = "mention-suggestions";
    box.id = field.id + "-mentions";
    box.setAttribute("role", "listbox");
    box.setAttribute("aria-label", "Colleagues to mention");
    list.forEach(function (u, i) {
      var li = document.createElement("li");
      li.id = box.id + "-" + i;
      li.setAttribute("role", "option");
      li.dataset.handle = u.handle;
      li.textContent = u.name + " (@" + u.handle + ")";
      li.addEventListener("mousedown", function (e) { e.preventDefault(); insert(u.handle); });
      box.appendChild(li);
      items.push(li);
    });
    field.setAttribute("aria-controls", box.id);
    field.insertAdjacentElement("afterend", box);
    highlight(0);
  }

  function lookup(el) {
    var p = panel(), w = wordAtCaret(el);
    if (!p || !w) return close();
    field = el;
    var mine = ++seq;
    clearTimeout(timer);
    timer = setTimeout(function () {
      fetch(p.dataset.mentionsUrl + "?q=" + encodeURIComponent(w.query), {
        headers: { "HX-Request": "true" }, credentials: "same-origin"
      }).then(function (r) { return r.ok ? r.json() : []; }).then(function (list) {
        if (mine === seq && document.activeElement === el) show(list);
      }).catch(close);
    }, 120);
  }

  function isNoteField(el) {
    return el && el.tagName === "TEXTAREA" && (el.id === "note-body" || el.classList.contains("mention-input"));
  }

  document.addEventListener("input", function (e) { if (isNoteField(e.target)) lookup(e.target); });
  document.addEventListener("keydown", function (e) {
    if (!box || e.target !== field) return;
    if (e.key === "ArrowDown") { e.preventDefault(); highlight((active + 1) % items.length); }
    else if (e.key === "ArrowUp") { e.preventDefault(); highlight((active - 1 + items.length) % items.length); }
    else if ((e.key === "Enter" || e.key === "Tab") && items[active]) { e.preventDefault(); insert(items[active].dataset.handle); }
    else if (e.key === "Escape") { e.preventDefault(); close(); }
  });
  document.addEventListener("focusout", function (e) { if (e.target === field) setTimeout(close, 150); });

  document.addEventListener("DOMContentLoaded", function () { showTools(); });
  document.addEventListener("htmx:afterSettle", function () { showTools(); });
  if (document.readyState !== "loading") showTools();
})();
