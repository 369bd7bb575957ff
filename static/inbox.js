/* Pigeonhole agent workspace: the small behaviours HTMX does not cover.
 *
 * - the composer's editor (contenteditable, bold/italic/lists/link), kept in its hidden field;
 * - drafts kept in this browser too until the server confirms them (dropped connection, reload);
 * - Standard Responses: the picker (button or "/" in the editor), Replace / Append (with subject);
 * - recipient fields as ARIA comboboxes (suggestions), drag-and-drop attachments, "Send" enabled when the mail is complete;
 * - dialogs loaded by hx-get, expand/collapse all tiles, de-duplicated polled rows and tiles;
 * - presence: tells the server whether a composer is open;
 * - relative times in lists, mail frames sized to their content, quoted history folded.
 * - live updates: the event stream refreshes the panels, the badge, the arrival card and the rows that changed.
 * No inline script anywhere (CSP script-src 'self').
 */
(function () {
  "use strict";

  var BACKUP = "ph-draft:";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { return ""; }
  }

  /* --- Composer ------------------------------------------------------------------------ */

  function composerOf(el) { return el && el.closest ? el.closest(".composer") : null; }
  function editorOf(composer) { return $(".editor", composer); }
  function formOf(composer) { return $(".composer-form", composer); }

  function syncBody(composer) {
    var editor = editorOf(composer);
    if (!editor) return;
    var hidden = document.getElementById(editor.getAttribute("data-body"));
    if (hidden) hidden.value = editor.innerHTML;
  }

  function fieldValue(composer, name) {
    var el = $('[name="' + name + '"]', formOf(composer));
    return el ? el.value.trim() : "";
  }

  function updateSend(composer) {
    var button = $(".send-button", composer);
    if (!button) return;
    var editor = editorOf(composer);
    var missing = [];
    if (!fieldValue(composer, "from_address_id")) missing.push("From");
    if (composer.getAttribute("data-kind") === "new" && !fieldValue(composer, "queue_id")) missing.push("Queue");
    if (!fieldValue(composer, "to")) missing.push("To");
    if (!fieldValue(composer, "subject")) missing.push("Subject");
    if (!editor || !editor.textContent.trim()) missing.push("the message");
    button.disabled = missing.length > 0;
    button.title = missing.length ? "Fill in " + listWords(missing) + " first" : "";
  }

  /* ["To", "Subject", "the message"] -> "To, Subject and the message" */
  function listWords(words) {
    return words.length < 2 ? words.join("") : words.slice(0, -1).join(", ") + " and " + words[words.length - 1];
  }

  function backupKey(composer) { return BACKUP + composer.getAttribute("data-draft-key"); }

  function backup(composer) {
    var data = { at: Date.now(), fields: {} };
    ["to", "cc", "bcc", "subject"].forEach(function (n) { data.fields[n] = fieldValue(composer, n); });
    var editor = editorOf(composer);
    data.fields.body = editor ? editor.innerHTML : "";
    try { localStorage.setItem(backupKey(composer), JSON.stringify(data)); } catch (e) { /* storage full or off */ }
  }

  function restore(composer) {
    var raw;
    try { raw = localStorage.getItem(backupKey(composer)); } catch (e) { return; }
    if (!raw) return;
    var data;
    try { data = JSON.parse(raw); } catch (e) { return; }
    var serverAt = Date.parse(composer.getAttribute("data-updated")) || 0;
    if (!data || data.at <= serverAt) { localStorage.removeItem(backupKey(composer)); return; }
    var form = formOf(composer);
    ["to", "cc", "bcc", "subject"].forEach(function (n) {
      var el = $('[name="' + n + '"]', form);
      if (el && !el.readOnly && typeof data.fields[n] === "string") el.value = data.fields[n];
    });
    var editor = editorOf(composer);
    if (editor && typeof data.fields.body === "string") {
      editor.innerHTML = data.fields.body;
      if (editor.getAttribute("data-images") === "shown") releaseHeld(editor);
    }
    syncBody(composer);
    setStatus(composer, "Restored what you typed before the connection dropped; saving…");
    htmx.trigger(form, "ph-save");
  }

  /* The server holds remote images of a draft aside (data-ph-src) until "Show images"; a copy kept
     in this browser before that still has them aside: give them back once the page shows images. */
  function releaseHeld(editor) {
    $all("*", editor).forEach(function (el) {
      Array.prototype.slice.call(el.attributes).forEach(function (a) {
        if (a.name.indexOf("data-ph-") !== 0) return;
        var name = a.name.slice(8) === "xlink-href" ? "xlink:href" : a.name.slice(8);
        el.removeAttribute(a.name);
        if (!el.hasAttribute(name)) el.setAttribute(name, a.value);
      });
    });
  }

  function setStatus(composer, text) {
    var status = $(".draft-status", composer);
    if (status) status.textContent = text;
  }

  function initComposer(composer) {
    if (composer.getAttribute("data-ready")) return;
    composer.setAttribute("data-ready", "1");
    syncBody(composer);
    restore(composer);
    updateSend(composer);
    composer.scrollIntoView({ block: "nearest" });
    // A reload (or a crash of the tab) brings this composer back open.
    if ($("#conversation")) {
      var url = new URL(window.location.href);
      url.searchParams.set("draft", composer.getAttribute("data-draft-id"));
      window.history.replaceState(window.history.state, "", url.toString());
    }
  }

  function forgetComposer(composer) {
    var url = new URL(window.location.href);
    if (url.searchParams.get("draft") === composer.getAttribute("data-draft-id")) {
      url.searchParams.delete("draft");
      window.history.replaceState(window.history.state, "", url.toString());
    }
  }

  function initAll(root) {
    refreshTimes(root);
    sizeFrames(root);
    $all(".composer", root).forEach(initComposer);
    if (root.classList && root.classList.contains("composer")) initComposer(root);
    setPresenceReplying();
  }

  document.addEventListener("input", function (e) {
    var composer = composerOf(e.target);
    if (!composer) return;
    if (e.target.classList.contains("editor")) syncBody(composer);
    backup(composer);
    setStatus(composer, "Saving…");
    updateSend(composer);
  });
  document.addEventListener("change", function (e) {
    var composer = composerOf(e.target);
    if (composer) updateSend(composer);
  });

  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("[data-command]") : null;
    if (button) {
      var composer = composerOf(button);
      var editor = editorOf(composer);
      editor.focus();
      var command = button.getAttribute("data-command");
      if (command === "createLink") {
        var url = window.prompt("Link address (https://…)", "https://");
        if (!url || !/^(https?:|mailto:)/i.test(url)) return;
        document.execCommand("createLink", false, url);
      } else {
        document.execCommand(command, false, null);
      }
      syncBody(composer);
      editor.dispatchEvent(new Event("input", { bubbles: true }));
    }
  });

  /* "/" at the start of a line (or after a space) opens the Standard Responses picker; closing the
     picker without choosing (Escape, Close) gives the "/" back where it was typed. */
  var savedRange = null;
  var pickerEditor = null;
  var pickerSlash = false;
  document.addEventListener("keydown", function (e) {
    var editor = e.target;
    if (e.key !== "/" || !editor.classList || !editor.classList.contains("editor")) return;
    var sel = window.getSelection();
    if (!sel.rangeCount) return;
    var range = sel.getRangeAt(0);
    var before = "";
    if (range.startContainer.nodeType === Node.TEXT_NODE) {
      before = range.startContainer.textContent.slice(0, range.startOffset);
    }
    if (before && !/\s$/.test(before)) return;
    e.preventDefault();
    openPicker(editor);
    pickerSlash = true;
  });

  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest(".responses-button") : null;
    if (button) rememberSelection(editorOf(composerOf(button)));
  }, true);

  function rememberSelection(editor) {
    pickerEditor = editor;
    pickerSlash = false;
    var sel = window.getSelection();
    savedRange = null;
    if (sel.rangeCount && editor.contains(sel.getRangeAt(0).startContainer)) savedRange = sel.getRangeAt(0).cloneRange();
  }

  function openPicker(editor) {
    rememberSelection(editor);
    htmx.ajax("GET", editor.getAttribute("data-picker"), { target: "#dialogs", swap: "innerHTML" });
  }

  /* Where the picker was opened from: the remembered caret, else the end of the message. */
  function insertionPoint(editor) {
    if (savedRange && editor.contains(savedRange.startContainer)) return savedRange.cloneRange();
    var range = document.createRange();
    range.selectNodeContents(editor);
    range.collapse(false);
    return range;
  }

  /* Replace: the response is the whole message. Append: a line break, then the response as a new
     paragraph (at the caret, or at the end), never glued to the text before it. */
  function insertHtml(editor, html, mode) {
    if (mode === "replace") {
      editor.innerHTML = html;
      return;
    }
    editor.focus();
    var range = insertionPoint(editor);
    var before = document.createRange();
    before.setStart(editor, 0);
    before.setEnd(range.startContainer, range.startOffset);
    var box = document.createElement("div");
    box.innerHTML = html;
    if (!box.firstElementChild || box.firstChild.nodeType === Node.TEXT_NODE) box.innerHTML = "<p>" + html + "</p>";
    var fragment = document.createDocumentFragment();
    if (before.toString().trim()) fragment.appendChild(document.createElement("br"));
    var last = box.lastChild;
    while (box.firstChild) fragment.appendChild(box.firstChild);
    range.deleteContents();
    range.insertNode(fragment);
    var sel = window.getSelection();
    var caret = document.createRange();
    caret.selectNodeContents(last);
    caret.collapse(false);
    sel.removeAllRanges();
    sel.addRange(caret);
  }

  /* The picker closed without a choice: the "/" that opened it goes back where it was typed. */
  function giveBackSlash() {
    if (!pickerSlash || !pickerEditor) return;
    pickerSlash = false;
    var editor = pickerEditor;
    editor.focus();
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(insertionPoint(editor));
    document.execCommand("insertText", false, "/");
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("[data-insert]") : null;
    if (!button) return;
    var box = button.closest("[data-insert-url]");
    var dialog = button.closest("dialog");
    var editor = pickerEditor || $(".composer .editor");
    fetch(box.getAttribute("data-insert-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        var composer = composerOf(editor);
        pickerSlash = false;  // the response takes the place of the "/"
        if (dialog) closeDialog(dialog);  // a modal dialog makes the editor inert: close it first
        insertHtml(editor, data.html, button.getAttribute("data-insert"));
        if (button.getAttribute("data-with-subject") && data.subject) {
          var subject = $('[name="subject"]', formOf(composer));
          subject.value = data.subject;  // with or without the body, the response's subject replaces the subject
        }
        syncBody(composer);
        editor.dispatchEvent(new Event("input", { bubbles: true }));
        editor.focus();
      })
      .catch(function () { button.textContent = "Could not insert; try again"; });
  });

  /* In the picker's search, Enter appends the first response found (the keyboard way). */
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Enter" || e.target.id !== "picker-q") return;
    e.preventDefault();
    var first = $('#picker-results [data-insert="append"]');
    if (first) first.click();
  });

  /* Recipient fields are ARIA comboboxes (WAI-ARIA 1.2 "list autocomplete"): the field
   * (role=combobox) controls its `.suggestions` (role=listbox) that htmx fills with options.
   * ArrowDown / ArrowUp move the active option (aria-activedescendant, aria-selected), Enter
   * chooses it, Escape closes the list, Tab leaves it closed. Choosing puts the address in place
   * of what is being typed. The mouse chooses on mousedown (the field keeps its focus, and a list
   * refreshed between press and release cannot swallow the choice).
   *
   * The addresses are checked (`checkRecipients`) when the field is left, when a separator ("," or ";") is typed or a suggestion chosen, and while an
   * error is shown (so it goes as soon as the address is right), never at each key of a half-typed
   * address. */
  function listOf(input) { return document.getElementById(input.getAttribute("aria-controls")); }
  function optionsOf(list) { return list ? $all('[role="option"]', list) : []; }
  function comboOf(list) { return $('[aria-controls="' + list.id + '"]'); }

  function setActive(input, option) {
    optionsOf(listOf(input)).forEach(function (o) { o.setAttribute("aria-selected", o === option ? "true" : "false"); });
    if (option) {
      input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function closeList(input) {
    var list = listOf(input);
    if (list) { list.innerHTML = ""; list.hidden = true; }
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  document.addEventListener("htmx:afterSwap", function (e) {
    var list = e.detail.target;
    if (!list || !list.classList || !list.classList.contains("suggestions")) return;
    var input = comboOf(list);
    var open = optionsOf(list).length > 0 && input === document.activeElement;
    list.hidden = !open;
    if (!open) list.innerHTML = "";
    if (input) {
      input.setAttribute("aria-expanded", open ? "true" : "false");
      input.removeAttribute("aria-activedescendant");
    }
  });

  /* A check posts the field's value as it is now; only the answer to the latest check is shown
     (an older one arriving late never overwrites it), and the same value is not checked twice. */
  var checkTimers = {}, checkSeq = {};
  function checkSoon(input, wait) {
    clearTimeout(checkTimers[input.id]);
    checkTimers[input.id] = setTimeout(function () { checkRecipients(input); }, wait);
  }

  function checkRecipients(input) {
    var value = input.value;
    if (input.getAttribute("data-checked") === value) return;
    input.setAttribute("data-checked", value);
    var seq = (checkSeq[input.id] || 0) + 1;
    checkSeq[input.id] = seq;
    var body = new URLSearchParams();
    body.append("field", input.getAttribute("data-field"));
    body.append(input.name, value);
    fetch(input.getAttribute("data-check-url"), {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" }
    }).then(function (r) { return r.text(); }).then(function (html) {
      if (checkSeq[input.id] !== seq) return;
      var out = document.getElementById(input.getAttribute("aria-describedby"));
      if (out) out.innerHTML = html;
      if ($(".field-error", out)) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    }).catch(function () { input.removeAttribute("data-checked"); });  // offline: checked again later
  }

  document.addEventListener("focusout", function (e) {
    var input = e.target;
    if (input.classList && input.classList.contains("recipients") && !input.readOnly) checkSoon(input, 0);
  });

  document.addEventListener("input", function (e) {
    var input = e.target;
    if (!input.classList || !input.classList.contains("recipients")) return;
    var value = input.value;
    var error = document.getElementById(input.getAttribute("aria-describedby"));
    if (/[,;]\s*$/.test(value)) checkSoon(input, 0);  // a separator: the addresses before it are whole
    else if (error && $(".field-error", error)) checkSoon(input, 400);  // an error shown: check as it is fixed
  });

  document.addEventListener("keydown", function (e) {
    var input = e.target;
    if (!input.classList || !input.classList.contains("recipients") || e.altKey || e.ctrlKey || e.metaKey) return;
    var list = listOf(input);
    var options = optionsOf(list);
    var open = input.getAttribute("aria-expanded") === "true" && options.length > 0;
    var active = document.getElementById(input.getAttribute("aria-activedescendant") || "");
    var at = options.indexOf(active);
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (!open) return;
      e.preventDefault();
      var step = e.key === "ArrowDown" ? 1 : -1;
      var next = at < 0 ? (step > 0 ? 0 : options.length - 1) : (at + step + options.length) % options.length;
      setActive(input, options[next]);
    } else if (e.key === "Enter") {
      if (!open || at < 0) return;
      e.preventDefault();
      chooseSuggestion(active);
    } else if (e.key === "Escape") {
      if (!open) return;
      e.preventDefault();  // closes the list only, not the composer
      closeList(input);
    } else if (e.key === "Tab") {
      if (open) closeList(input);
    }
  });

  document.addEventListener("mousedown", function (e) {
    var option = e.target.closest ? e.target.closest(".suggestion") : null;
    if (!option || e.button !== 0) return;
    e.preventDefault();
    chooseSuggestion(option);
  });

  function chooseSuggestion(option) {
    var composer = composerOf(option);
    var input = $('[name="' + option.getAttribute("data-field") + '"]', formOf(composer));
    var parts = input.value.split(/[,;]/);
    parts[parts.length - 1] = " " + option.getAttribute("data-address");
    input.value = parts.map(function (p) { return p.trim(); }).filter(Boolean).join(", ") + ", ";
    closeList(input);
    input.focus();
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  /* Drag and drop onto the attachments area. */
  document.addEventListener("dragover", function (e) {
    var zone = e.target.closest ? e.target.closest("[data-dropzone]") : null;
    if (zone) { e.preventDefault(); zone.classList.add("dragging"); }
  });
  document.addEventListener("dragleave", function (e) {
    var zone = e.target.closest ? e.target.closest("[data-dropzone]") : null;
    if (zone) zone.classList.remove("dragging");
  });
  document.addEventListener("drop", function (e) {
    var zone = e.target.closest ? e.target.closest("[data-dropzone]") : null;
    if (!zone) return;
    e.preventDefault();
    zone.classList.remove("dragging");
    var input = document.getElementById(zone.getAttribute("data-dropzone"));
    if (e.dataTransfer && e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }
  });

  /* --- Dialogs ------------------------------------------------------------------------- */

  function closeDialog(dialog) {
    if (dialog.open) dialog.close();
    dialog.remove();
    if (dialog.classList.contains("picker")) giveBackSlash();
  }
  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("[data-close-dialog]") : null;
    if (button) closeDialog(button.closest("dialog"));
  });
  /* Escape closes a loaded dialog at once, also from a search field that has text (the browser
     would clear the field first, and close only on a second press). */
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape" || e.defaultPrevented) return;
    var dialog = e.target.closest ? e.target.closest("#dialogs dialog") : null;
    if (!dialog) return;
    e.preventDefault();
    closeDialog(dialog);
  }, true);

  /* --- Relative times in lists ------------------------------------------------------------
   * A list's <time class="relative"> reads "3 min ago" (the server wrote the exact local time;
   * its title keeps the exact time in the agent's profile zone for the hover). Beyond a week the
   * exact date stays. Refreshed every 30 s and after every swap. */
  function relativeText(then, now) {
    var minutes = Math.floor((now - then) / 60000);
    if (minutes < 1) return "just now";
    if (minutes < 60) return minutes + " min ago";
    var hours = Math.floor(minutes / 60);
    if (hours < 24) return hours + " h ago";
    var days = Math.floor(hours / 24);
    if (days === 1) return "yesterday";
    if (days < 7) return days + " days ago";
    return null;
  }

  function refreshTimes(root) {
    var now = Date.now();
    $all("time.relative", root).forEach(function (el) {
      if (!el.hasAttribute("data-exact")) el.setAttribute("data-exact", el.textContent);
      var then = Date.parse(el.getAttribute("datetime"));
      var text = isNaN(then) ? null : relativeText(then, now);
      el.textContent = text || el.getAttribute("data-exact");
    });
  }
  setInterval(function () { refreshTimes(document); }, 30000);

  /* --- Mail frames sized to their content ---------------------------------------------------
   * A message's frame is sandboxed without scripts but same-origin, so the page measures its
   * document and gives the frame that height: no scrollbar inside, a long mail grows the page.
   * Sized again when its images load, when its tile opens, and when the window is resized. */
  function sizeFrame(frame) {
    var doc;
    try { doc = frame.contentDocument; } catch (err) { return; }
    if (!doc || !doc.documentElement || !doc.body || !frame.getClientRects().length) return;
    doc.documentElement.style.overflow = "hidden";  // CSSOM, not a style attribute: allowed by the CSP
    frame.classList.add("sized");  // no minimum height from here on
    frame.style.height = "0px";  // measure the content alone: a document is at least as tall as its frame
    var height = Math.max(doc.documentElement.scrollHeight, doc.body.scrollHeight);
    frame.style.height = height + "px";
  }

  function sizeFrames(root) { $all("iframe.mail-frame", root).forEach(sizeFrame); }

  document.addEventListener("load", function (e) {
    // (A frame's load comes after its images.)
    if (e.target && e.target.matches && e.target.matches("iframe.mail-frame")) sizeFrame(e.target);
  }, true);
  document.addEventListener("toggle", function (e) {
    if (e.target && e.target.open) sizeFrames(e.target);
  }, true);
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { sizeFrames(document); }, 150);
  });

  /* --- Quoted history: "Show quoted text" loads it once, then shows and hides it ------------ */
  document.addEventListener("htmx:beforeRequest", function (e) {
    var button = e.detail.elt;
    if (!button.classList || !button.classList.contains("quote-toggle")) return;
    var quoted = document.getElementById(button.getAttribute("aria-controls"));
    if (quoted && quoted.childElementCount) {  // loaded already: only fold or unfold
      e.preventDefault();
      var show = quoted.hidden;
      quoted.hidden = !show;
      setQuoteButton(button, show);
      if (show) sizeFrames(quoted);
    }
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    var quoted = e.detail.target;
    if (!quoted || !quoted.classList || !quoted.classList.contains("quoted")) return;
    quoted.hidden = false;
    var button = $('[aria-controls="' + quoted.id + '"]');
    if (button) setQuoteButton(button, true);
  });
  function setQuoteButton(button, shown) {
    button.setAttribute("aria-expanded", shown ? "true" : "false");
    button.textContent = shown ? "Hide quoted text" : "Show quoted text";
  }

  /* --- Tiles --------------------------------------------------------------------------- */

  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("[data-tiles]") : null;
    if (!button) return;
    var open = button.getAttribute("data-tiles") === "expand";
    $all(".tile-details").forEach(function (d) { d.open = open; });
  });

  /* --- HTMX hooks ---------------------------------------------------------------------- */

  function dedupe() {
    var seen = {};
    $all("[data-dedupe]").forEach(function (el) {
      if (!el.id) return;
      if (seen[el.id]) el.remove(); else seen[el.id] = true;
    });
    var rows = $("#conversation-rows");
    if (rows && $(".conv-row", rows)) $all(".empty-row", rows).forEach(function (r) { r.remove(); });
  }

  document.addEventListener("htmx:afterSwap", function (e) {
    dedupe();
    initAll(e.detail.target || document);
  });
  /* A loaded dialog opens once htmx has settled it: only then do its own hx- attributes listen
     (htmx binds new content in the settle step), so what is typed at once is not lost. */
  document.addEventListener("htmx:afterSettle", function (e) {
    var target = e.detail.target;
    if (!target || target.id !== "dialogs") return;
    var dialog = $("dialog", target);
    if (dialog && !dialog.open) {
      dialog.showModal();
      var search = $('input[type="search"]', dialog);
      if (search) search.focus();
    }
  });
  document.addEventListener("htmx:oobAfterSwap", function () { dedupe(); });

  document.addEventListener("htmx:configRequest", function (e) {
    var elt = e.detail.elt;
    if (elt && elt.id === "presence") {
      e.detail.parameters["replying"] = $("#composers .composer") ? "1" : "0";
    }
    var composer = composerOf(elt);
    if (composer) {
      syncBody(composer);
      if (elt.classList.contains("send-button") || elt.hasAttribute("data-close-composer")) {
        composer.setAttribute("data-finishing", "1");  // no autosave may follow: it would race the draft's end
      } else if (elt.classList.contains("composer-form")) {
        if (composer.getAttribute("data-finishing")) { e.preventDefault(); return; }
        composer.setAttribute("data-sent-at", String(Date.now()));
      }
    }
  });

  document.addEventListener("htmx:afterRequest", function (e) {
    var elt = e.detail.elt;
    var composer = composerOf(elt) || (elt && elt.classList && elt.classList.contains("composer-form") ? composerOf(elt) : null);
    if (!composer) return;
    // (htmx leaves `successful` unset when it follows an HX-Redirect: read the status itself.)
    var status = e.detail.xhr ? e.detail.xhr.status : 0;
    var ok = status >= 200 && status < 300;
    var isSave = elt.classList.contains("composer-form");
    var isClose = elt.hasAttribute("data-close-composer");
    var isSend = elt.classList.contains("send-button");
    if (!ok && (isClose || isSend)) composer.removeAttribute("data-finishing");
    if (ok && (isClose || isSend)) {
      try { localStorage.removeItem(backupKey(composer)); } catch (err) { /* ignore */ }
      forgetComposer(composer);
      if (isClose && composer.isConnected) composer.remove();
      setPresenceReplying();
    } else if (ok && isSave) {
      var at = parseInt(composer.getAttribute("data-sent-at"), 10) || 0;
      composer.setAttribute("data-updated", new Date(at).toISOString());
      try {
        var raw = localStorage.getItem(backupKey(composer));
        if (raw && JSON.parse(raw).at <= at) localStorage.removeItem(backupKey(composer));
      } catch (err) { /* ignore */ }
    }
  });

  /* A dropped connection: keep the words here and try again until the server has them. */
  var retryTimer = null;
  document.addEventListener("htmx:sendError", function (e) {
    var composer = composerOf(e.detail.elt);
    if (!composer) return;
    backup(composer);
    setStatus(composer, "Not saved: no connection. Your text is kept in this browser and saved when the connection is back.");
    if (!retryTimer) {
      retryTimer = window.setInterval(function () {
        if (!navigator.onLine) return;
        $all(".composer").forEach(function (c) {
          try { if (localStorage.getItem(backupKey(c))) htmx.trigger(formOf(c), "ph-save"); } catch (err) { /* ignore */ }
        });
      }, 3000);
    }
  });
  window.addEventListener("online", function () {
    $all(".composer").forEach(function (c) { htmx.trigger(formOf(c), "ph-save"); });
  });

  /* Closing the tab or leaving: save what is open, and leave the presence list. */
  window.addEventListener("pagehide", function () {
    $all(".composer").forEach(function (c) { syncBody(c); backup(c); });
    var presence = $("#presence");
    if (presence && navigator.sendBeacon) {
      var data = new FormData();
      data.append("leaving", "1");
      data.append("csrf_token", csrfToken());
      navigator.sendBeacon(presence.getAttribute("hx-post"), data);
    }
  });

  /* --- Live updates -------------------------------------------------------------------- */
  /* One EventSource per page on /inbox/events (app/inbox/live.py). Each "change" names a conversation
     the agent may see; a moment's changes are gathered, then the page asks for what they touched:
     the open conversation's Actions card (with the header's badge and the arrival card, out of band)
     and new tiles, the inbox's row in place (a new message: the poller brings it to the top) and the
     view counts. The composers and the note are never touched, nor the Actions card while the agent is
     choosing in it. While the stream is down the pollers go on, and the card is refreshed at that pace. */
  var live = { source: null, open: false, opened: false, pending: {}, pendingAt: {}, timer: null, retryMs: 0,
               refreshAt: 0, actionsAt: 0, deferredPanel: false };

  function liveElement() { return document.getElementById("live"); }

  function pollMs() {
    var el = liveElement();
    return (parseInt(el && el.getAttribute("data-poll-seconds"), 10) || 10) * 1000;
  }

  function trigger(id) {
    var el = document.getElementById(id);
    if (el) htmx.trigger(el, "ph-live");
  }

  /* Whether the agent is choosing in the Actions card: a list has focus, or shows a choice not yet sent. */
  function choosing() {
    var actions = document.getElementById("actions");
    if (!actions) return false;
    var focused = document.activeElement;
    if (focused && actions.contains(focused) && focused.tagName === "SELECT") return true;
    return $all("select", actions).some(function (select) {
      return Array.prototype.some.call(select.options, function (o) { return o.selected !== o.defaultSelected; });
    });
  }

  function refreshPanel() {
    if (choosing()) {
      live.deferredPanel = true;  // refreshed once they leave the card, or by the answer to their choice
      return;
    }
    trigger("panel-refresh");
  }

  function flushChanges() {
    live.timer = null;
    var changes = live.pending, times = live.pendingAt;
    live.pending = {};
    live.pendingAt = {};
    var conversation = document.getElementById("conversation");
    var here = conversation ? conversation.getAttribute("data-conversation-id") : null;
    var rowUrl = liveElement().getAttribute("data-row-url");
    var poll = false;
    Object.keys(changes).forEach(function (id) {
      var kind = changes[id];
      if (id === here) {
        // A question of the card ("… took this conversation 20 s ago") shows the state as of its answer:
        // a change announced before that is in it already.
        var ask = $("#actions .ask-first");
        if (!ask || !(times[id] <= parseFloat(ask.getAttribute("data-at")))) refreshPanel();
        if (kind === "message" || kind === "note" || kind === "transfer" || kind === "change") trigger("thread-poller");
      }
      var row = document.getElementById("conv-" + id);
      if (row && kind !== "message") {
        htmx.ajax("GET", rowUrl.replace("/c/0/", "/c/" + id + "/"), { target: row, swap: "outerHTML" });
      } else if (document.getElementById("inbox-poller")) {
        poll = true;
      }
    });
    if (poll) trigger("inbox-poller");
    trigger("view-tabs");
  }

  function heard(data) {
    var id = String(data.id);
    live.pending[id] = live.pending[id] === "message" ? "message" : (data.kind || "change");
    live.pendingAt[id] = Math.max(live.pendingAt[id] || 0, data.at || Infinity);
    if (!live.timer) live.timer = window.setTimeout(flushChanges, 100);
  }

  /* Everything this page shows may have changed while the stream was down. */
  function refreshAll() {
    if (document.getElementById("conversation")) {
      refreshPanel();
      trigger("thread-poller");
    }
    trigger("inbox-poller");
    trigger("view-tabs");
  }

  function startLive() {
    var el = liveElement();
    if (!el || !window.EventSource) return;
    var source = live.source = new EventSource(el.getAttribute("data-live-url"));
    source.addEventListener("open", function () {
      live.open = true;
      live.retryMs = 0;
      if (live.opened) refreshAll();  // back after a break: catch up on what was missed
      live.opened = true;
    });
    source.addEventListener("change", function (e) {
      try { heard(JSON.parse(e.data)); } catch (err) { /* not ours */ }
    });
    source.addEventListener("signed-out", function () {
      source.close();
      live.open = false;
    });
    source.addEventListener("error", function () {
      live.open = false;
      // The browser opens an ended stream again by itself; one the server refused (503, a sign-in page) stays
      // closed: try again later, less and less often.
      if (source.readyState === EventSource.CLOSED && live.source === source) {
        live.retryMs = Math.min(Math.max(live.retryMs * 2, pollMs()), 120000);
        window.setTimeout(startLive, live.retryMs);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!liveElement()) return;
    startLive();
    window.setInterval(function () {  // the fallback: the pollers go on by themselves; the card too
      if (!live.open && document.getElementById("conversation")) refreshPanel();
    }, pollMs());
  });
  window.addEventListener("pagehide", function () {
    if (live.source) live.source.close();  // frees the server's thread at once
    live.source = null;
  });

  document.addEventListener("focusout", function (e) {
    var actions = document.getElementById("actions");
    if (!live.deferredPanel || !actions || !actions.contains(e.target)) return;
    if (e.relatedTarget && actions.contains(e.relatedTarget)) return;
    window.setTimeout(function () {  // after the focus moved (and any click it was part of began)
      if (!live.deferredPanel || choosing()) return;
      live.deferredPanel = false;
      trigger("panel-refresh");
    }, 0);
  });

  /* An action of this page answered after a refresh left: that answer is newer (or asks a question);
     the refresh's older card is not swapped over it. */
  document.addEventListener("htmx:beforeRequest", function (e) {
    if (e.detail.elt && e.detail.elt.id === "panel-refresh") {
      live.refreshAt = Date.now();
    } else if (e.detail.requestConfig && e.detail.requestConfig.verb && e.detail.requestConfig.verb !== "get") {
      live.actionsAt = Date.now();  // an action sent after a refresh left: whatever it answers, the refresh is older
    }
  });
  document.addEventListener("htmx:beforeSwap", function (e) {
    var elt = e.detail.elt;
    if (elt && elt.id === "panel-refresh") {
      if (live.actionsAt >= live.refreshAt) {
        e.detail.shouldSwap = false;
      } else if (choosing()) {  // the agent began choosing while the refresh was on its way
        e.detail.shouldSwap = false;
        live.deferredPanel = true;
      }
    } else if (e.detail.target && e.detail.target.id === "actions") {
      live.actionsAt = Date.now();
      live.deferredPanel = false;  // the answer to their choice is the card as it is now
    }
  });

  function setPresenceReplying() { /* read at each presence request, see htmx:configRequest */ }

  document.addEventListener("DOMContentLoaded", function () {
    initAll(document);
    var pageDialog = $("#dialogs dialog");
    if (pageDialog && !pageDialog.open) pageDialog.showModal();
    var hash = window.location.hash;
    if (hash && hash.indexOf("#composer-") === 0) {
      var c = document.querySelector(hash);
      if (c) c.scrollIntoView();
    }
  });
})();
