// Imprint console: the boot images page follows a running build. While
// the job is running it asks GET /bootimages/build once a second and
// shows the state and log lines; when the build ends the page reloads
// once, so the list shows the new image. No inline script: the CSP
// allows only files like this one.
"use strict";

(function () {
  function stamp(s) {
    if (!s) {
      return "-";
    }
    var d = new Date(s);
    if (isNaN(d.getTime()) || d.getFullYear() < 2) {
      return "-";
    }
    return d.toLocaleString();
  }

  function show(job) {
    var sec = document.getElementById("build-job");
    sec.setAttribute("data-state", job.state || "");
    var st = document.getElementById("build-state");
    st.textContent = job.state || "no build since the server started";
    st.className = job.state === "failed" ? "bad" : "";
    document.getElementById("build-started").textContent = stamp(job.started) + (job.by ? " by " + job.by : "");
    document.getElementById("build-ended").textContent = stamp(job.ended);
    document.getElementById("build-error").textContent = job.error || "-";
    var log = document.getElementById("build-log");
    var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.textContent = (job.lines || []).join("\n") + (job.lines && job.lines.length ? "\n" : "");
    if (atEnd) {
      log.scrollTop = log.scrollHeight;
    }
    var button = document.querySelector("#build-form button");
    if (button) {
      button.disabled = job.state === "running";
    }
  }

  function follow(sec) {
    var wasRunning = sec.getAttribute("data-state") === "running";
    function poll() {
      var xhr = new XMLHttpRequest();
      xhr.open("GET", "/bootimages/build");
      xhr.addEventListener("load", function () {
        var job = null;
        try {
          job = JSON.parse(xhr.responseText);
        } catch (e) {
          job = null;
        }
        if (xhr.status !== 200 || !job) {
          window.setTimeout(poll, 5000);
          return;
        }
        show(job);
        if (job.state === "running") {
          wasRunning = true;
          window.setTimeout(poll, 1000);
        } else if (wasRunning) {
          window.location.assign("/bootimages");
        }
      });
      xhr.addEventListener("error", function () {
        window.setTimeout(poll, 5000);
      });
      xhr.send();
    }
    if (wasRunning) {
      poll();
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var sec = document.getElementById("build-job");
    if (sec) {
      follow(sec);
    }
  });
})();
