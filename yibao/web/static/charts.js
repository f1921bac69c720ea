// Interactive charts (yibao/web/charts.py): each div.ychart carries its plotly.js spec in data-spec.
// plotly.js is local: the console loads it from this script's data-plotly URL (CSP script-src 'self');
// the fund-year report has it inline, so window.Plotly is already there.  No CDN, no inline script in the console.
(function () {
  "use strict";
  const me = document.currentScript;
  const plotlyUrl = me && me.dataset ? me.dataset.plotly : "";

  // stable hooks for tests and screen readers: legend-<chart>, bar-<chart>-<trace>-<point>
  function tag(gd) {
    const key = gd.dataset.chart;
    const legend = gd.querySelector("g.legend");
    if (legend) legend.id = "legend-" + key;
    gd.querySelectorAll("g.barlayer g.trace.bars").forEach((t, j) =>
      t.querySelectorAll("g.point path").forEach((p, i) => { p.id = "bar-" + key + "-" + j + "-" + i; }));
    gd.querySelectorAll("g.pielayer g.trace g.slice path.surface").forEach((p, i) => { p.id = "slice-" + key + "-" + i; });
  }

  function draw(el) {
    let spec;
    try { spec = JSON.parse(el.dataset.spec); } catch (e) { el.textContent = "chart data unreadable / 图表数据无法读取"; return; }
    if (spec.layout && spec.layout.height) el.style.height = spec.layout.height + "px";  // responsive plotly.js would fill the window
    window.Plotly.newPlot(el, spec.data, spec.layout, spec.config).then(gd => {
      tag(gd);
      gd.on("plotly_afterplot", () => tag(gd));
      gd.dataset.ready = "1";
    });
  }

  function drawAll() { document.querySelectorAll("div.ychart").forEach(draw); }

  function start() {
    if (!document.querySelector("div.ychart")) return;
    if (window.Plotly) { drawAll(); return; }
    if (!plotlyUrl) return;
    const s = document.createElement("script");
    s.src = plotlyUrl;
    s.onload = drawAll;
    document.head.appendChild(s);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
