// Draws the dashboard's charts with plotly.js from the page's own data island
// (a JSON script element: no inline script, so the page's CSP allows only 'self').
"use strict";
(function () {
  var specs = JSON.parse(document.getElementById("chart-data").textContent);
  var colours = ["#0b6d6a", "#e07a1f", "#5b5ea6", "#a4262c", "#6b8e23"];
  specs.forEach(function (spec) {
    var traces = spec.series.map(function (s, i) {
      var trace = { name: s.name, x: spec.categories, y: s.values, marker: { color: colours[i % colours.length] } };
      if (spec.kind === "line") {
        trace.type = "scatter";
        trace.mode = "lines+markers";
        trace.line = { color: colours[i % colours.length] };
        trace.connectgaps = false;
      } else {
        trace.type = "bar";
      }
      return trace;
    });
    if (spec.goal) {
      traces.push({
        type: "scatter", mode: "lines", name: String(spec.goal),
        x: [spec.categories[0], spec.categories[spec.categories.length - 1]], y: [spec.goal, spec.goal],
        line: { dash: "dash", color: "#a4262c" }
      });
    }
    var layout = {
      margin: { t: 10, r: 10, b: 60, l: 60 }, barmode: "group", showlegend: spec.series.length > 1 || !!spec.goal,
      legend: { orientation: "h" }, font: { family: "system-ui, sans-serif" }
    };
    var element = document.getElementById("chart-" + spec.id);
    Plotly.newPlot(element, traces, layout, { displayModeBar: false, responsive: true }).then(function () {
      element.setAttribute("data-drawn", "true");
    });
  });
})();
