// Imprint console: live updates over Server-Sent Events. Every element
// with data-sse="URL" has its content replaced by each "update" event of
// that stream (HTML the server rendered and escaped). No inline script:
// the Content-Security-Policy allows only this file.
"use strict";

(function () {
  function connect(el) {
    var url = el.getAttribute("data-sse");
    var source = new EventSource(url);
    var banner = null;
    function showBanner(text) {
      if (!banner) {
        banner = document.createElement("p");
        banner.className = "flash bad";
        banner.setAttribute("role", "status");
        el.parentNode.insertBefore(banner, el);
      }
      banner.textContent = text;
    }
    source.addEventListener("update", function (ev) {
      el.innerHTML = ev.data;
      el.setAttribute("data-updated", String(Date.now()));
      if (banner) {
        banner.remove();
        banner = null;
      }
    });
    source.addEventListener("failure", function (ev) {
      showBanner("Live update failed: " + ev.data);
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        showBanner("Live updates stopped; reload the page to resume.");
      }
    };
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // Status selects submit their form on change; the Set button stays for
  // keyboards and for browsers without script.
  function autoSubmit() {
    var selects = document.querySelectorAll("form.status-form select");
    for (var i = 0; i < selects.length; i++) {
      selects[i].addEventListener("change", function (ev) { ev.target.form.requestSubmit(); });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var els = document.querySelectorAll("[data-sse]");
    for (var i = 0; i < els.length; i++) {
      connect(els[i]);
    }
    autoSubmit();
  });
})();
