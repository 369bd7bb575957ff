/* Channels, Flows and Publish pages: "⋮" menus, dialogs, default ports, placeholder buttons.
   Small and vanilla; everything else is htmx and server-rendered HTML. */
(function () {
  "use strict";

  // --- "⋮" menus: a disclosure button (aria-expanded) controlling a list of actions ----------
  function setMenu(button, open) {
    var list = document.getElementById(button.getAttribute("aria-controls"));
    button.setAttribute("aria-expanded", open ? "true" : "false");
    if (list) list.hidden = !open;
    if (open && list) {
      var first = list.querySelector("a, button");
      if (first) first.focus();
    }
  }

  function openMenus() {
    return document.querySelectorAll("[data-menu-button][aria-expanded='true']");
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-menu-button]");
    openMenus().forEach(function (other) { if (other !== button) setMenu(other, false); });
    if (button) setMenu(button, button.getAttribute("aria-expanded") !== "true");
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    openMenus().forEach(function (button) {
      setMenu(button, false);
      button.focus();
    });
  });

  // Arrow keys move between a menu's actions.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    var list = event.target.closest(".menu-list");
    if (!list) return;
    var items = Array.prototype.slice.call(list.querySelectorAll("a, button"));
    var index = items.indexOf(event.target);
    if (index < 0) return;
    event.preventDefault();
    var next = items[(index + (event.key === "ArrowDown" ? 1 : items.length - 1)) % items.length];
    next.focus();
  });

  // --- dialogs: <dialog data-dialog> loaded by htmx opens modally; Cancel closes ----------------
  function openDialogs(root) {
    var dialogs = [];
    if (root.matches && root.matches("dialog[data-dialog]")) dialogs.push(root);
    if (root.querySelectorAll) dialogs = dialogs.concat(Array.prototype.slice.call(root.querySelectorAll("dialog[data-dialog]")));
    dialogs.forEach(function (dialog) {
      if (!dialog.isConnected) return;
      if (!dialog.open) {
        dialog.showModal();
      } else if (!dialog.matches(":modal") && dialog.closest("#dialog-host")) {
        dialog.close();
        dialog.showModal();
      }
      dialog.addEventListener("close", function () {
        if (dialog.closest("#dialog-host")) dialog.remove();
      });
      var invalid = dialog.querySelector("[aria-invalid='true']");
      if (invalid) invalid.focus();
    });
  }

  document.addEventListener("htmx:load", function (event) { openDialogs(event.detail.elt); });

  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-close]");
    if (!closer) return;
    var dialog = closer.closest("dialog");
    if (dialog && dialog.matches(":modal")) {
      event.preventDefault();
      dialog.close();
    }
  });

  document.body.addEventListener("closeDialog", function () {
    document.querySelectorAll("#dialog-host dialog[open]").forEach(function (dialog) { dialog.close(); });
  });

  // A menu item that opened a dialog closes its menu.
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt.closest && event.detail.elt.closest(".menu-list")) {
      openMenus().forEach(function (button) { setMenu(button, false); });
    }
  });

  // --- ports: follow the protocol and security unless the admin typed their own ----------------
  document.addEventListener("change", function (event) {
    var side = event.target.getAttribute("data-side");
    var form = event.target.closest("form[data-ports]");
    if (!side || !form) return;
    var ports = JSON.parse(form.getAttribute("data-ports"));
    var protocolField = form.querySelector("[name='" + side + "_protocol']");
    var protocol = protocolField ? protocolField.value : "smtp";
    var checked = form.querySelector("[name='" + side + "_security']:checked");
    var security = checked ? checked.value : "ssl";
    var port = form.querySelector("[name='" + side + "_port']");
    if (!port || !ports[protocol]) return;
    var defaults = [];
    Object.keys(ports).forEach(function (p) {
      if ((side === "outgoing") === (p === "smtp")) {
        Object.keys(ports[p]).forEach(function (s) { defaults.push(String(ports[p][s])); });
      }
    });
    if (port.value === "" || defaults.indexOf(port.value) >= 0) port.value = ports[protocol][security];
  });

  // --- kind of mailbox: show its sign-in (password or "Sign in with …"), fill the provider's servers --
  document.addEventListener("change", function (event) {
    if (event.target.name !== "mailbox_kind") return;
    var form = event.target.closest("form");
    var kind = event.target.value;
    form.querySelectorAll("[data-kind-section]").forEach(function (section) {
      section.hidden = section.getAttribute("data-kind-section") !== kind;
    });
    var presets = JSON.parse(document.getElementById("mailbox-kind").getAttribute("data-presets"));
    var preset = presets[kind];
    if (!preset) return;
    Object.keys(preset).forEach(function (name) {
      var fields = form.querySelectorAll("[name='" + name + "']");
      fields.forEach(function (field) {
        if (field.type === "radio") field.checked = field.value === String(preset[name]);
        else field.value = preset[name];
      });
    });
  });

  // --- a custom domain's type: show the Microsoft Exchange sign-in fields for "Microsoft Exchange" ----
  document.addEventListener("change", function (event) {
    if (event.target.name !== "domain_type") return;
    var form = event.target.closest("form");
    form.querySelectorAll("[data-domain-type-section]").forEach(function (section) {
      section.hidden = section.getAttribute("data-domain-type-section") !== event.target.value;
    });
  });

  // --- placeholder buttons insert "{{ name }}" at the cursor and refresh the preview -----------
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-insert]");
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-insert-into"));
    if (!field) return;
    var text = button.getAttribute("data-insert");
    var start = field.selectionStart, end = field.selectionEnd;
    field.setRangeText(text, start, end, "end");
    field.focus();
    field.dispatchEvent(new Event("input", { bubbles: true }));
  });
})();

// Copy buttons (DKIM Configuration): <button data-copy="#id"> copies that element's text.
(function () {
  document.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    const source = document.querySelector(button.dataset.copy);
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
    });
  });
})();
