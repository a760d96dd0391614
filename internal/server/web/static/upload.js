// Imprint console: content version upload with a progress bar. The file
// is the request body as it is (XMLHttpRequest sends a File from disk in
// pieces, so a multi-GB file is never read into memory here either); the
// version's other fields go in the query string and the session's CSRF
// token in the X-CSRF-Token header. No inline script: the CSP allows only
// files like this one.
"use strict";

(function () {
  function human(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
  }

  function setup(form) {
    var status = document.getElementById("upload-status");
    var bar = document.getElementById("upload-progress");
    var text = document.getElementById("upload-text");
    var button = form.querySelector("button[type=submit]");

    function show(msg, bad) {
      status.hidden = false;
      text.textContent = msg;
      text.className = bad ? "bad" : "";
    }

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var query = new URLSearchParams();
      var file = null;
      var fields = form.elements;
      for (var i = 0; i < fields.length; i++) {
        var el = fields[i];
        if (!el.name) {
          continue;
        }
        if (el.type === "file") {
          file = el.files && el.files[0];
        } else if (el.value !== "") {
          query.set(el.name, el.value);
        }
      }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action + "?" + query.toString());
      xhr.setRequestHeader("X-CSRF-Token", form.getAttribute("data-csrf"));
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable && e.total > 0) {
          var pct = Math.floor((100 * e.loaded) / e.total);
          bar.value = pct;
          bar.setAttribute("data-loaded", String(e.loaded));
          show(human(e.loaded) + " of " + human(e.total) + " (" + pct + "%)", false);
        }
      });
      xhr.upload.addEventListener("load", function () {
        bar.value = 100;
        show("Sent; the server is checking and storing it…", false);
      });
      xhr.addEventListener("load", function () {
        var ans = null;
        try {
          ans = JSON.parse(xhr.responseText);
        } catch (e) {
          ans = { ok: false, message: "upload failed: HTTP " + xhr.status };
        }
        if (xhr.status < 300 && ans.ok) {
          show(ans.message, false);
          form.setAttribute("data-done", "ok");
          window.location.assign(ans.next);
          return;
        }
        show(ans.message || "upload failed: HTTP " + xhr.status, true);
        form.setAttribute("data-done", "failed");
        button.disabled = false;
      });
      xhr.addEventListener("error", function () {
        show("Upload broken off (network error): nothing was stored.", true);
        form.setAttribute("data-done", "failed");
        button.disabled = false;
      });
      button.disabled = true;
      bar.value = 0;
      show(file ? "Starting upload of " + human(file.size) + "…" : "Sending…", false);
      xhr.send(file || "");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("upload-form");
    if (form) {
      setup(form);
    }
  });
})();
