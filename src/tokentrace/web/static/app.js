// The UI's own script. Draws every chart a page embeds: <script type="application/json" class="chart-data"> holds
// {name, unit, stacked, x: [epoch s], series: [{label, values}]} and its <div class="plot">
// sibling receives a uPlot. Runs on load and after each htmx swap.
(function () {
  "use strict";
  var COLORS = ["#2f6fde", "#e67e22", "#16a085", "#8e44ad", "#c0392b", "#7f8c8d", "#27ae60", "#d4ac0d"];

  function format(unit, v) {
    if (v == null) return "—";
    if (unit === "$") {
      // as pricing/amounts.py: two significant digits below a cent, so a priced call never reads $0.0000
      var m = Math.abs(v);
      var digits = m >= 1 || m === 0 ? 2 : m >= 0.01 ? 4 : Math.min(1 - Math.floor(Math.log10(m)), 10);
      return "$" + v.toFixed(digits);
    }
    if (unit === "%") return (v * 100).toFixed(2) + "%";
    if (unit === "ms") return Math.round(v) + " ms";
    return v >= 1000 ? Math.round(v).toLocaleString() : +v.toFixed(2) + "";
  }

  // The y axis: from 0 (every series here is a count, a rate or a duration) to a little above
  // the highest value. A chart of zeros or of nothing gets a small range of its own unit, not
  // uPlot's default of ±20 (an error-rate axis to 2000% when no call failed).
  function yRange(unit, min, max) {
    var floor = unit === "%" ? 0.01 : unit === "$" ? 0.01 : 1;
    if (min == null || max == null || !isFinite(max) || max <= 0) return [0, floor];
    return [Math.min(0, min), max * 1.1];
  }

  function stack(series) {
    // Cumulative sums so each band sits on the ones before it.
    var sums = null;
    return series.map(function (s) {
      var values = s.values.map(function (v, i) { return (v || 0) + (sums ? sums[i] : 0); });
      sums = values;
      return values;
    });
  }

  function draw(holder) {
    var spec = JSON.parse(holder.textContent);
    var plot = holder.parentNode.querySelector(".plot");
    if (!plot || plot.dataset.drawn) return;
    plot.dataset.drawn = "1";
    var values = spec.stacked ? stack(spec.series) : spec.series.map(function (s) { return s.values; });
    var series = [{}];
    // Lines of one value lie on one another (three scores at 1.0): the first is drawn wide and
    // solid, each later one thinner and dashed on top of it, so every line shows where they meet.
    var overlaid = !spec.stacked && spec.series.length > 1;
    spec.series.forEach(function (s, i) {
      var color = COLORS[i % COLORS.length];
      series.push({
        label: s.label,
        stroke: color,
        fill: spec.stacked ? color + "55" : undefined,
        width: overlaid && i === 0 ? 3 : 1.5,
        dash: overlaid && i > 0 ? [4 + 2 * i, 4] : undefined,
        spanGaps: false,
        points: { show: false },
        value: function (u, v, si, idx) { return format(spec.unit, idx == null ? v : s.values[idx]); },
      });
    });
    if (spec.stacked) series = [series[0]].concat(series.slice(1).reverse());
    var data = [spec.x].concat(spec.stacked ? values.slice().reverse() : values);
    var width = Math.max(plot.clientWidth || plot.parentNode.clientWidth - 16, 300);
    new uPlot({
      width: width,
      height: 200,
      series: series,
      scales: { y: { range: function (u, min, max) { return yRange(spec.unit, min, max); } } },
      axes: [{}, { size: 70, values: function (u, ticks) { return ticks.map(function (t) { return format(spec.unit, t); }); } }],
      legend: { show: spec.series.length > 1 || spec.stacked },
      cursor: { points: { show: false } },
    }, data, plot);
  }

  function drawAll() {
    if (typeof uPlot === "undefined") return;
    document.querySelectorAll("script.chart-data").forEach(draw);
  }

  // Filter forms leave empty inputs out of the request, so the pushed URL names only real filters.
  document.addEventListener("htmx:configRequest", function (event) {
    var form = event.detail.formData;
    if (!form) return;
    Array.from(form.keys()).forEach(function (key) {
      if (form.get(key) === "") form.delete(key);
    });
  });

  // /reconcile: a chosen export file is read into the form's text (the form posts plain fields).
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input.id !== "export-file" || !input.files.length) return;
    input.files[0].text().then(function (text) {
      document.getElementById("export-text").value = text;
    });
  });

  // For the browser tests: how a value reads and what range an axis gets.
  window.tokentraceCharts = { format: format, yRange: yRange };

  document.addEventListener("DOMContentLoaded", drawAll);
  document.addEventListener("htmx:afterSettle", drawAll);
})();
