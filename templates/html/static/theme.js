// Applies the colour scheme the reader chose with the toggle (the `kiln_theme` cookie) before
// the page paints, on every page; without it the page follows the system setting.
"use strict";
(function () {
  const m = document.cookie.match(/(?:^|;\s*)kiln_theme=(light|dark)/);
  if (m) document.documentElement.dataset.theme = m[1];
})();
