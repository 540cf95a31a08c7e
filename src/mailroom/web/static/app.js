// Mailroom dashboard: the little behaviour htmx does not give. No inline scripts (CSP).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Provider presets fill the server fields (custom leaves them as typed).
  var preset = document.getElementById("preset");
  if (preset) {
    preset.addEventListener("change", function () {
      var opt = preset.options[preset.selectedIndex];
      var fill = function (id, value) {
        var field = document.getElementById(id);
        if (field && value) { field.value = value; }
      };
      // IMAP and SMTP come from the same preset (connectors/presets.py).
      fill("host", opt.dataset.host);
      fill("port", opt.dataset.port);
      fill("security", opt.dataset.security);
      fill("smtp_host", opt.dataset.smtpHost);
      fill("smtp_port", opt.dataset.smtpPort);
      fill("smtp_security", opt.dataset.smtpSecurity);
    });
  }
  // "/" jumps to the search box, as in most dashboards.
  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (event.key === "/" && !/INPUT|TEXTAREA|SELECT/.test(tag)) {
      var search = document.querySelector("input[type=search]");
      if (search) { event.preventDefault(); search.focus(); }
    }
  });
});
