// Mailroom dashboard: the little behaviour htmx does not give. No inline scripts (CSP).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Provider presets fill the server fields (custom leaves them as typed).
  var preset = document.getElementById("preset");
  if (preset) {
    preset.addEventListener("change", function () {
      var opt = preset.options[preset.selectedIndex];
      if (!opt.dataset.host) { return; }
      document.getElementById("host").value = opt.dataset.host;
      document.getElementById("port").value = opt.dataset.port;
      document.getElementById("security").value = opt.dataset.security;
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
