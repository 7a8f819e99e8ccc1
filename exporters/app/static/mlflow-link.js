// mlflow-prov: a "Provenance" link in MLflow's own UI (added by the prov server app).
// MLflow's page is a React app that re-renders often, so the links are (re)placed whenever
// the page changes. Each is found by what MLflow's element is (the sidebar's documentation
// link, the run header's data-testid); when MLflow moves it, that link is not shown and
// nothing else changes.
(function () {
  "use strict";
  var script = document.currentScript;
  var home = (script && script.getAttribute("data-prov-home")) || "/prov/";
  var NAV_ID = "mlflow-prov-nav-link";
  var RUN_ID = "mlflow-prov-run-link";
  // Three linked nodes (producer, run, product), drawn in MLflow's icon size and colour.
  var ICON = '<circle cx="3" cy="8" r="2" stroke="currentColor" stroke-width="1.5" fill="none"/>' +
    '<circle cx="13" cy="3.5" r="2" stroke="currentColor" stroke-width="1.5" fill="none"/>' +
    '<circle cx="13" cy="12.5" r="2" stroke="currentColor" stroke-width="1.5" fill="none"/>' +
    '<path d="M5 7.2 11 4.3M5 8.8l6 2.9" stroke="currentColor" stroke-width="1.5"/>';
  var RUN_ROUTE = /^#\/experiments\/[^/]+\/runs\/([0-9a-zA-Z]+)/;

  function docsEntry() {
    var links = document.querySelectorAll("nav a[href*='mlflow.org/docs'], aside a[href*='mlflow.org/docs'], a[href*='mlflow.org/docs']");
    for (var i = 0; i < links.length; i++) {
      var item = links[i].closest("li");
      if (item && item.parentNode) return item;
    }
    return null;
  }

  function placeNavLink() {
    if (document.getElementById(NAV_ID)) return;
    var docs = docsEntry();
    if (!docs) return;
    var item = docs.cloneNode(true);
    var anchor = item.querySelector("a");
    if (!anchor) return;
    anchor.id = NAV_ID;
    anchor.href = home;
    anchor.removeAttribute("target");
    anchor.removeAttribute("rel");
    anchor.title = "W3C PROV provenance of this server's experiments (mlflow-prov)";
    var icon = anchor.querySelector("span[role='img'] svg");
    if (icon) icon.innerHTML = ICON;
    var label = anchor.querySelector("span:not([role])") || anchor;
    label.textContent = "Provenance";
    docs.parentNode.insertBefore(item, docs);
  }

  function placeRunLink() {
    var match = RUN_ROUTE.exec(window.location.hash);
    var existing = document.getElementById(RUN_ID);
    if (!match) {
      if (existing) existing.remove();
      return;
    }
    var href = home.replace(/\/?$/, "/") + "runs/" + encodeURIComponent(match[1]);
    if (existing && existing.getAttribute("href") === href) return;
    if (existing) existing.remove();
    var header = document.querySelector("[data-testid='runs-header']");
    var heading = header && header.closest("h1, h2, h3");
    if (!heading || !heading.parentNode) return;
    var link = document.createElement("a");
    link.id = RUN_ID;
    link.href = href;
    link.textContent = "Provenance timeline";
    link.title = "This run's journal: every write, who made it, old and new values";
    link.style.cssText = "margin-left:12px;margin-right:auto;font-size:13px;white-space:nowrap;align-self:center";
    heading.parentNode.insertBefore(link, heading.nextSibling);
  }

  var pending = false;
  function update() {
    pending = false;
    placeNavLink();
    placeRunLink();
  }
  function schedule() {
    if (!pending) {
      pending = true;
      window.requestAnimationFrame(update);
    }
  }
  new MutationObserver(schedule).observe(document.documentElement, {childList: true, subtree: true});
  window.addEventListener("hashchange", schedule);
  schedule();
})();
