/*
 * Pigeonhole's rich-text editor: a small contenteditable toolbar over a plain <textarea>.
 *
 * Progressive enhancement: any <textarea data-rich-editor> gets a toolbar (Bold, Italic, Link,
 * lists, text and background colour, alignment, Image, HTML view) and an editable area; the
 * textarea stays in the form and always holds the HTML, so the form posts as before and works
 * without JavaScript. "HTML view" shows the textarea itself.
 *
 * Written for our page policy (script-src 'self'; style-src 'self'): no inline script or style.
 * HTML is loaded into the editable area through DOMParser, and each `style` attribute of the
 * content is applied through the CSSOM (element.style), which the policy allows, instead of being
 * parsed as markup, which it refuses. Images: with `data-image-upload="<url>"` the Image button
 * uploads the chosen file there (JSON {url} or {error}) and shows it from our URL; images from the
 * web are not shown in the editor and are removed on save (the server sanitises everything again).
 *
 * Why our own and not a vendored editor: the maintained ones (Quill, TipTap, Squire) either inject
 * <style> elements or keep their own document model that would rewrite the table-based HTML of
 * mail headers; this one keeps the HTML as written and is small enough to read.
 */
(function () {
  "use strict";

  var BUTTONS = [
    ["bold", "Bold", "B"], ["italic", "Italic", "I"], ["link", "Link", "Link"],
    ["insertUnorderedList", "Bulleted list", "• List"], ["insertOrderedList", "Numbered list", "1. List"],
    ["justifyLeft", "Align left", "Left"], ["justifyCenter", "Align centre", "Centre"],
    ["justifyRight", "Align right", "Right"]
  ];
  var counter = 0;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }

  function csrfToken(textarea) {
    var form = textarea.form;
    var input = form && form.querySelector("input[name=csrf_token]");
    if (input) return input.value;
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  }

  function ownImage(src) {
    return /^\/(?!\/)/.test(src) || /^data:image\//i.test(src) || src.indexOf(location.origin + "/") === 0;
  }

  /* `html` with every `style` attribute renamed `data-rte-style`: a parser (DOMParser too) that met a
     `style` attribute would apply it, which the page policy refuses (and reports as an error). A small
     tag scanner that honours quoted values, so text and attribute values are never touched. */
  function renameStyles(html) {
    var out = "", i = 0, n = html.length;
    while (i < n) {
      var lt = html.indexOf("<", i);
      if (lt < 0 || lt + 1 >= n) { out += html.slice(i); break; }
      out += html.slice(i, lt);
      if (html.slice(lt, lt + 4) === "<!--") {
        var endComment = html.indexOf("-->", lt + 4);
        endComment = endComment < 0 ? n : endComment + 3;
        out += html.slice(lt, endComment); i = endComment; continue;
      }
      if (!/[a-zA-Z]/.test(html.charAt(lt + 1))) { out += "<"; i = lt + 1; continue; }
      var j = lt + 1;
      while (j < n && !/[\s\/>]/.test(html.charAt(j))) j++;
      out += html.slice(lt, j);
      while (j < n && html.charAt(j) !== ">") {
        var c = html.charAt(j);
        if (/[\s\/]/.test(c)) { out += c; j++; continue; }
        var k = j;
        while (k < n && !/[\s\/>=]/.test(html.charAt(k))) k++;
        var name = html.slice(j, k);
        out += name.toLowerCase() === "style" ? "data-rte-style" : name;
        j = k;
        while (j < n && /\s/.test(html.charAt(j))) { out += html.charAt(j); j++; }
        if (html.charAt(j) === "=") {
          out += "="; j++;
          while (j < n && /\s/.test(html.charAt(j))) { out += html.charAt(j); j++; }
          var q = html.charAt(j);
          if (q === '"' || q === "'") {
            var close = html.indexOf(q, j + 1);
            close = close < 0 ? n : close + 1;
            out += html.slice(j, close); j = close;
          } else {
            var v = j;
            while (v < n && !/[\s>]/.test(html.charAt(v))) v++;
            out += html.slice(j, v); j = v;
          }
        }
      }
      if (j < n) { out += ">"; j++; }
      i = j;
    }
    return out;
  }

  /* Put `html` into `area` without parsing any style attribute as markup (see the header). */
  function load(area, html) {
    var doc = new DOMParser().parseFromString("<!DOCTYPE html><body>" + renameStyles(html), "text/html");
    var held = 0;
    doc.body.querySelectorAll("img").forEach(function (img) {
      if (!ownImage(img.getAttribute("src") || "")) { img.remove(); held += 1; }
    });
    area.replaceChildren.apply(area, Array.prototype.map.call(doc.body.childNodes, function (n) {
      return document.importNode(n, true);
    }));
    area.querySelectorAll("[data-rte-style]").forEach(function (node) {
      node.style.cssText = node.getAttribute("data-rte-style");
      node.removeAttribute("data-rte-style");
    });
    return held;
  }

  function enhance(textarea) {
    if (textarea.hasAttribute("data-rte-ready")) return;
    textarea.setAttribute("data-rte-ready", "");
    var id = "rte-" + (++counter);
    var label = textarea.id && document.querySelector("label[for='" + textarea.id + "']");
    var wrapper = el("div", { "class": "rte" });
    var toolbar = el("div", { "class": "rte-toolbar", role: "toolbar", "aria-label": "Formatting", "aria-controls": id });
    var area = el("div", { id: id, "class": "rte-area", contenteditable: "true", role: "textbox",
                           "aria-multiline": "true",
                           "aria-label": textarea.getAttribute("data-rich-label") || (label ? label.textContent.trim() : "Text") });
    if (textarea.getAttribute("aria-describedby")) area.setAttribute("aria-describedby", textarea.getAttribute("aria-describedby"));
    var status = el("p", { "class": "rte-status", role: "status", "aria-live": "polite" });
    var saved = null;

    BUTTONS.forEach(function (b) {
      var button = el("button", { type: "button", "class": "rte-button", "data-rte-command": b[0], title: b[1],
                                  "aria-label": b[1] }, b[2]);
      toolbar.appendChild(button);
    });
    [["foreColor", "Text colour", "#000000"], ["hiliteColor", "Background colour", "#ffffff"]].forEach(function (c) {
      var inputId = id + "-" + c[0];
      var box = el("span", { "class": "rte-colour" });
      box.appendChild(el("label", { "for": inputId }, c[1]));
      box.appendChild(el("input", { type: "color", id: inputId, value: c[2], "data-rte-command": c[0] }));
      toolbar.appendChild(box);
    });
    var upload = textarea.getAttribute("data-image-upload");
    var file = null;
    if (upload) {
      var fileId = id + "-image";
      file = el("input", { type: "file", id: fileId, accept: "image/png,image/jpeg,image/gif", "class": "rte-file" });
      var fileLabel = el("label", { "for": fileId, "class": "rte-button rte-file-label" }, "Image");
      toolbar.appendChild(file);
      toolbar.appendChild(fileLabel);
    }
    var htmlToggle = el("button", { type: "button", "class": "rte-button rte-html", "aria-pressed": "false" }, "HTML view");
    toolbar.appendChild(htmlToggle);

    var linkbar = el("div", { "class": "rte-linkbar", hidden: "" });
    var linkId = id + "-link";
    linkbar.appendChild(el("label", { "for": linkId }, "Link address"));
    var linkInput = el("input", { type: "url", id: linkId, placeholder: "https://" });
    linkbar.appendChild(linkInput);
    var linkOk = el("button", { type: "button" }, "Add link");
    var linkCancel = el("button", { type: "button" }, "Cancel");
    linkbar.appendChild(linkOk);
    linkbar.appendChild(linkCancel);

    textarea.parentNode.insertBefore(wrapper, textarea);
    wrapper.appendChild(toolbar);
    wrapper.appendChild(linkbar);
    wrapper.appendChild(area);
    wrapper.appendChild(textarea);
    wrapper.appendChild(status);
    textarea.classList.add("rte-source");
    textarea.hidden = true;
    if (load(area, textarea.value)) status.textContent = "Images from the web are not shown and are removed on save: upload them with “Image”.";
    if (label) label.addEventListener("click", function () { if (textarea.hidden) area.focus(); });

    function sync() {
      textarea.value = area.innerHTML;
      textarea.dispatchEvent(new Event("input", { bubbles: true }));
    }

    function remember() {
      var sel = window.getSelection();
      if (sel.rangeCount && area.contains(sel.getRangeAt(0).commonAncestorContainer)) saved = sel.getRangeAt(0).cloneRange();
    }

    function restore() {
      area.focus();
      if (saved) {
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(saved);
      }
    }

    // Alignment and background colour set element.style (the CSSOM) themselves: execCommand would
    // write `style` attributes, which the page policy refuses to apply (the editor would not show them).
    var BLOCKS = "p,div,h1,h2,h3,h4,h5,h6,li,td,th,blockquote";

    function align(value) {
      var range = window.getSelection().getRangeAt(0);
      var blocks = Array.prototype.filter.call(area.querySelectorAll(BLOCKS), function (b) {
        return range.intersectsNode(b);
      }).filter(function (b, i, all) {
        return !all.some(function (other) { return other !== b && b.contains(other); });
      });
      if (!blocks.length) {  // text straight in the editor: wrap its line (the run of inline nodes) in a <div>
        var top = range.startContainer;
        while (top.parentNode && top.parentNode !== area) top = top.parentNode;
        if (top === area) top = area.firstChild;
        var isBlock = function (n) { return n && n.nodeType === 1 && n.matches(BLOCKS + ",ul,ol,table,hr"); };
        var first = top, last = top;
        while (first && first.previousSibling && !isBlock(first.previousSibling) && first.previousSibling.nodeName !== "BR") first = first.previousSibling;
        while (last && last.nextSibling && !isBlock(last.nextSibling) && last.nextSibling.nodeName !== "BR") last = last.nextSibling;
        var div = document.createElement("div");
        area.insertBefore(div, first || null);
        var node = first;
        while (node) { var next = node === last ? null : node.nextSibling; div.appendChild(node); node = next; }
        blocks = [div];
      }
      blocks.forEach(function (b) { b.style.textAlign = value; });
    }

    function background(value) {
      var range = window.getSelection().getRangeAt(0);
      if (range.collapsed) return;
      var span = document.createElement("span");
      span.style.backgroundColor = value;
      span.appendChild(range.extractContents());
      range.insertNode(span);
      range.selectNodeContents(span);
    }

    function run(command, value) {
      restore();
      if (!window.getSelection().rangeCount) return;
      if (command.indexOf("justify") === 0) {
        align(command.slice(7).toLowerCase());
      } else if (command === "hiliteColor") {
        background(value);
      } else {
        document.execCommand("styleWithCSS", false, false);
        document.execCommand(command, false, value);
      }
      remember();
      sync();
    }

    document.addEventListener("selectionchange", remember);
    area.addEventListener("input", sync);
    area.addEventListener("blur", remember);
    toolbar.addEventListener("mousedown", function (event) {
      if (event.target.closest("button")) event.preventDefault();  // keep the selection in the text
    });
    toolbar.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-rte-command]");
      if (!button || area.hidden) return;
      var command = button.getAttribute("data-rte-command");
      if (command === "link") {
        linkbar.hidden = false;
        linkInput.value = "";
        linkInput.focus();
        return;
      }
      run(command, null);
    });
    toolbar.addEventListener("change", function (event) {
      var input = event.target.closest("input[type=color]");
      if (input && !area.hidden) run(input.getAttribute("data-rte-command"), input.value);
    });

    function addLink() {
      var url = linkInput.value.trim();
      if (!/^(https?:|mailto:|tel:)/i.test(url)) {
        status.textContent = "Write a link starting with https://, http://, mailto: or tel:.";
        linkInput.focus();
        return;
      }
      linkbar.hidden = true;
      status.textContent = "";
      if (saved && saved.collapsed) {  // nothing selected: the address itself becomes the link's text
        restore();
        var link = el("a", { href: url }, url);
        saved.insertNode(link);
        saved.setStartAfter(link);
        saved.collapse(true);
        restore();
        sync();
        return;
      }
      run("createLink", url);
    }
    linkOk.addEventListener("click", addLink);
    linkInput.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); addLink(); }
      if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); linkbar.hidden = true; restore(); }
    });
    linkCancel.addEventListener("click", function () { linkbar.hidden = true; restore(); });

    htmlToggle.addEventListener("click", function () {
      var toHtml = !area.hidden;
      if (toHtml) {
        textarea.value = area.innerHTML;
      } else {
        load(area, textarea.value);
      }
      area.hidden = toHtml;
      textarea.hidden = !toHtml;
      htmlToggle.setAttribute("aria-pressed", String(toHtml));
      toolbar.querySelectorAll("[data-rte-command]").forEach(function (c) { c.disabled = toHtml; });
      if (file) file.disabled = toHtml;
      (toHtml ? textarea : area).focus();
    });

    if (file) {
      file.addEventListener("change", function () {
        var chosen = file.files && file.files[0];
        if (!chosen) return;
        var data = new FormData();
        data.append("image", chosen, chosen.name);
        status.textContent = "Uploading " + chosen.name + "…";
        fetch(upload, { method: "POST", body: data, credentials: "same-origin",
                        headers: { "X-CSRFToken": csrfToken(textarea), "Accept": "application/json" } })
          .then(function (response) {
            return response.json().catch(function () { return { error: "The image could not be uploaded (" + response.status + ")." }; });
          })
          .then(function (reply) {
            file.value = "";
            if (!reply.url) { status.textContent = reply.error || "The image could not be uploaded."; return; }
            restore();
            var img = el("img", { src: reply.url, alt: (reply.name || "").replace(/\.[a-z0-9]+$/i, "") });
            var sel = window.getSelection();
            if (sel.rangeCount && area.contains(sel.getRangeAt(0).commonAncestorContainer)) {
              var range = sel.getRangeAt(0);
              range.deleteContents();
              range.insertNode(img);
              range.setStartAfter(img);
              range.collapse(true);
            } else {
              area.appendChild(img);
            }
            status.textContent = "Image added: " + chosen.name + ".";
            sync();
          })
          .catch(function () { status.textContent = "The image could not be uploaded: the server did not answer."; });
      });
    }

    // Placeholder chips ("Insert: …") put their text at the cursor of the rich view too.
    document.addEventListener("click", function (event) {
      var chip = event.target.closest("[data-insert]");
      if (!chip || chip.getAttribute("data-insert-into") !== textarea.id || area.hidden || !area.isConnected) return;
      event.stopPropagation();
      restore();
      document.execCommand("insertText", false, chip.getAttribute("data-insert"));
      remember();
      sync();
    }, true);
  }

  function enhanceAll(root) {
    (root || document).querySelectorAll("textarea[data-rich-editor]").forEach(enhance);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { enhanceAll(); });
  else enhanceAll();
  document.addEventListener("htmx:load", function (event) { enhanceAll(event.detail.elt); });
})();
