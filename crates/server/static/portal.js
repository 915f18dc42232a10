// skill-pool portal: copy buttons, list filters, the composer's slug check. No framework,
// no inline script (the pages' Content-Security-Policy forbids it).
"use strict";

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext !== false) {
    return navigator.clipboard.writeText(text);
  }
  return new Promise(function (resolve, reject) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    document.body.removeChild(area);
    if (ok) { resolve(); } else { reject(new Error("copy refused")); }
  });
}

function setupCopy(button) {
  button.addEventListener("click", function () {
    var label = button.textContent;
    copyText(button.getAttribute("data-copy")).then(function () {
      button.textContent = "Copied";
      button.classList.add("done");
    }, function () {
      button.textContent = "Select and copy";
    });
    setTimeout(function () { button.textContent = label; button.classList.remove("done"); }, 2000);
  });
}

function setupFilter(input) {
  var selector = input.getAttribute("data-filter");
  var count = document.getElementById("count");
  function apply() {
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var items = document.querySelectorAll(selector);
    var shown = 0;
    items.forEach(function (item) {
      var text = (item.getAttribute("data-search") || item.textContent).toLowerCase();
      var match = words.every(function (w) { return text.indexOf(w) !== -1; });
      item.hidden = !match;
      if (match) { shown += 1; }
    });
    if (count && selector === ".plugin-card") {
      count.textContent = shown + " of " + items.length + " plugins shown";
    }
  }
  input.addEventListener("input", apply);
}

function setupSlug(input) {
  var help = document.querySelector("[data-slug-help]");
  var rule = /^[a-z0-9]+(-[a-z0-9]+)*$/;
  input.addEventListener("input", function () {
    var v = input.value;
    var ok = v === "" || (rule.test(v) && v.length <= 64);
    input.setAttribute("aria-invalid", ok ? "false" : "true");
    if (help) {
      help.textContent = ok ? "kebab-case: lowercase letters, digits and single dashes"
        : "not kebab-case: use lowercase letters, digits and single dashes (e.g. code-review)";
      help.classList.toggle("field-error", !ok);
    }
  });
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button.copy[data-copy]").forEach(setupCopy);
  document.querySelectorAll("input[data-filter]").forEach(setupFilter);
  var slug = document.getElementById("slug");
  if (slug && !slug.readOnly) { setupSlug(slug); }
});

// JSON text areas: say at once when the text is not JSON (the server checks the rules on preview).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("textarea.code").forEach(function (area) {
    var note = document.createElement("small");
    note.className = "field-error";
    note.setAttribute("aria-live", "polite");
    area.insertAdjacentElement("afterend", note);
    area.addEventListener("input", function () {
      var text = area.value.trim();
      var message = "";
      if (text !== "") {
        try { JSON.parse(text); } catch (e) { message = "not valid JSON yet: " + e.message; }
      }
      note.textContent = message;
      area.setAttribute("aria-invalid", message ? "true" : "false");
    });
  });
});

// The composer: every change is checked by the server with Publish's rules (nothing is
// written); the refusal appears beside its field and the preview follows what is typed.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-validate]");
  if (!form) { return; }
  var url = form.getAttribute("data-validate");
  var status = document.getElementById("live-status");
  var preview = document.getElementById("preview");
  var list = document.getElementById("preview-files");
  var timer = null;
  var seq = 0;
  function show(result) {
    form.parentNode.querySelectorAll("[data-live-error]").forEach(function (slot) {
      slot.hidden = true;
      slot.textContent = "";
    });
    if (result.ok) {
      status.textContent = "Checked: publishable, " + result.files.length + " files.";
      list.textContent = "";
      result.files.forEach(function (f) {
        var li = document.createElement("li");
        var code = document.createElement("code");
        code.textContent = f.path;
        var meta = document.createElement("span");
        meta.className = "muted";
        meta.textContent = " " + f.size + " B" + (f.from ? " · " + f.from : "");
        li.appendChild(code);
        li.appendChild(meta);
        list.appendChild(li);
      });
      preview.hidden = false;
    } else {
      status.textContent = "Not publishable yet: see the message beside the field.";
      var slot = form.parentNode.querySelector('[data-live-error="' + result.field + '"]') ||
        form.parentNode.querySelector('[data-live-error="general"]');
      slot.textContent = result.message;
      slot.hidden = false;
    }
  }
  function check() {
    var mine = ++seq;
    var body = new URLSearchParams(new FormData(form));
    fetch(url, { method: "POST", body: body, headers: { "content-type": "application/x-www-form-urlencoded" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (result) { if (result && mine === seq) { show(result); } })
      .catch(function () {});
  }
  function later() {
    clearTimeout(timer);
    timer = setTimeout(check, 400);
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
});
