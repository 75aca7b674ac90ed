// The UI's own script. Draws every chart a page embeds: <script type="application/json" class="chart-data"> holds
// {name, unit, stacked, x: [epoch s], series: [{label, values}]} and its <div class="plot">
// sibling receives a uPlot. Runs on load and after each htmx swap.
(function () {
  "use strict";
  var COLORS = ["#2f6fde", "#e67e22", "#16a085", "#8e44ad", "#c0392b", "#7f8c8d", "#27ae60", "#d4ac0d"];

  function format(unit, v) {
    if (v == null) return "—";
    if (unit === "$") return "$" + v.toFixed(v < 1 ? 4 : 2);
    if (unit === "%") return (v * 100).toFixed(2) + "%";
    if (unit === "ms") return Math.round(v) + " ms";
    return v >= 1000 ? Math.round(v).toLocaleString() : +v.toFixed(2) + "";
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
    spec.series.forEach(function (s, i) {
      var color = COLORS[i % COLORS.length];
      series.push({
        label: s.label,
        stroke: color,
        fill: spec.stacked ? color + "55" : undefined,
        width: 1.5,
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

  document.addEventListener("DOMContentLoaded", drawAll);
  document.addEventListener("htmx:afterSettle", drawAll);
})();
