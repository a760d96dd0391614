// Imprint console: content version upload with a progress bar. The file
// is the request body as it is (XMLHttpRequest sends a File from disk in
// pieces, so a multi-GB file is never read into memory here either); the
// version's other fields go in the query string and the session's CSRF
// token in the X-CSRF-Token header. No inline script: the CSP allows only
// files like this one.
//
// A Folder version picked as a folder (<input webkitdirectory>) is sent
// as the tar stream the server's Folder upload reads (content.PutTar),
// built as a Blob of parts: per file a 512-byte ustar header (preceded
// by a pax header when the path is longer than 100 bytes, not ASCII, or
// the size does not fit the header's 11 octal digits), the File itself
// (a reference to the file on disk, not its bytes), zero padding to 512
// bytes; then two zero blocks. Nothing is read into memory: the browser
// reads the files as it sends the Blob.
"use strict";

(function () {
  var enc = new TextEncoder();

  // octal writes n in octal, zero-padded to width-1 digits and a NUL,
  // into h at off.
  function octal(h, off, width, n) {
    var s = Math.floor(n).toString(8);
    while (s.length < width - 1) {
      s = "0" + s;
    }
    h.set(enc.encode(s), off);
    h[off + width - 1] = 0;
  }

  // header is one 512-byte ustar header.
  function header(nameBytes, size, mtime, type) {
    var h = new Uint8Array(512);
    h.set(nameBytes.subarray(0, 100), 0);
    octal(h, 100, 8, type === "5" ? 493 : 420); // 0755, 0644
    octal(h, 108, 8, 0);
    octal(h, 116, 8, 0);
    octal(h, 124, 12, size);
    octal(h, 136, 12, mtime);
    h.set(enc.encode("        "), 148); // checksum counts as spaces
    h[156] = type.charCodeAt(0);
    h.set(enc.encode("ustar\u000000"), 257);
    var sum = 0;
    for (var i = 0; i < 512; i++) {
      sum += h[i];
    }
    octal(h, 148, 7, sum);
    h[155] = 32;
    return h;
  }

  // paxRecord is one "LEN key=value\n" record; LEN counts itself.
  function paxRecord(key, value) {
    var body = enc.encode(" " + key + "=" + value + "\n").length;
    var n = body + String(body).length;
    if (String(n).length !== String(body).length) {
      n = body + String(n).length;
    }
    return n + " " + key + "=" + value + "\n";
  }

  function pad(n) {
    return new Uint8Array((512 - (n % 512)) % 512);
  }

  var maxOctalSize = Math.pow(8, 11) - 1; // what 11 octal digits hold

  // relPath is a picked file's path inside the chosen folder: its
  // webkitRelativePath without the folder's own name.
  function relPath(file) {
    var parts = (file.webkitRelativePath || file.name).split("/");
    if (parts.length > 1) {
      parts.shift();
    }
    return parts.join("/");
  }

  // folderTar returns the tar stream of files (a FileList from a
  // webkitdirectory input) as a Blob, and its total size.
  function folderTar(files) {
    var parts = [];
    for (var i = 0; i < files.length; i++) {
      var f = files[i];
      var path = relPath(f);
      var name = enc.encode(path);
      var mtime = Math.floor((f.lastModified || 0) / 1000);
      var pax = "";
      if (name.length > 100 || /[^\x20-\x7e]/.test(path)) {
        pax += paxRecord("path", path);
      }
      if (f.size > maxOctalSize) {
        pax += paxRecord("size", String(f.size));
      }
      if (pax !== "") {
        var rec = enc.encode(pax);
        parts.push(header(enc.encode("PaxHeaders/" + i), rec.length, mtime, "x"), rec, pad(rec.length));
      }
      parts.push(header(name, Math.min(f.size, maxOctalSize), mtime, "0"), f, pad(f.size));
    }
    parts.push(new Uint8Array(1024));
    return new Blob(parts, { type: "application/x-tar" });
  }
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
      var folder = null;
      var fields = form.elements;
      for (var i = 0; i < fields.length; i++) {
        var el = fields[i];
        if (!el.name) {
          continue;
        }
        if (el.type === "file" && el.hasAttribute("webkitdirectory")) {
          folder = el.files && el.files.length > 0 ? el.files : null;
        } else if (el.type === "file") {
          file = (el.files && el.files[0]) || file;
        } else if (el.value !== "") {
          query.set(el.name, el.value);
        }
      }
      if (form.querySelector("input[webkitdirectory]") && !file && !folder) {
        show("Choose a folder (or a .tar archive of it) first.", true);
        return;
      }
      if (folder) {
        file = folderTar(folder);
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
      show(file ? "Starting upload of " + (folder ? folder.length + " files, " : "") + human(file.size) + "…" : "Sending…", false);
      xhr.send(file || "");
    });
  }

  // Tests build folder tars from File objects they make in the page.
  window.imprintFolderTar = folderTar;

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("upload-form");
    if (form) {
      setup(form);
    }
  });
})();
