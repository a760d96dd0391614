// Task-sequence editor conveniences. The editor works without this file:
// every change is a form posted to the server. No inline script: the
// Content-Security-Policy allows only files like this one.
"use strict";

(function () {
  var key = "imprint-editor-scroll:" + location.pathname;

  // Each change reloads the page; keep the tree where it was.
  function keepScroll() {
    var forms = document.querySelectorAll(".editor form");
    for (var i = 0; i < forms.length; i++) {
      forms[i].addEventListener("submit", function () {
        try { sessionStorage.setItem(key, String(window.scrollY)); } catch (e) { /* storage off */ }
      });
    }
    var y = null;
    try { y = sessionStorage.getItem(key); sessionStorage.removeItem(key); } catch (e) { /* storage off */ }
    if (y !== null && !location.hash) {
      window.scrollTo(0, parseInt(y, 10) || 0);
    }
  }

  // Typing into the query builder or the PowerShell box picks that kind
  // of condition.
  function pickKind() {
    var form = document.getElementById("step-form");
    if (!form) {
      return;
    }
    function choose(kind) {
      var r = form.querySelector('input[name="cond.kind"][value="' + kind + '"]');
      if (r) { r.checked = true; }
    }
    form.addEventListener("input", function (ev) {
      var n = ev.target.name || "";
      if (n.indexOf("q.") === 0) { choose("query"); }
      if (n === "cond.ps") { choose("powershell"); }
    });
  }

  // Alt+ArrowUp / Alt+ArrowDown move the selected step.
  function keys() {
    document.addEventListener("keydown", function (ev) {
      if (!ev.altKey || (ev.key !== "ArrowUp" && ev.key !== "ArrowDown")) {
        return;
      }
      var b = document.querySelector('li.node.selected > .row button[value="' + (ev.key === "ArrowUp" ? "up" : "down") + '"]');
      if (b && !b.disabled) {
        ev.preventDefault();
        b.click();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    keepScroll();
    pickKind();
    keys();
  });
})();
