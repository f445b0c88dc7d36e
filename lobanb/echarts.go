package lobanb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"

	"github.com/loba-dev/loba/kernelsetup"
	"github.com/loba-dev/loba/lobanb/rundir"
)

// EChartsCDN is the ECharts build charts load when the CDN is reachable (the version install.sh
// copies for offline use).
var EChartsCDN = "https://cdn.jsdelivr.net/npm/echarts@" + kernelsetup.EChartsVersion + "/dist/echarts.min.js"

// lossChart is the go-echarts line chart of a run's losses: the raw loss per step, its moving
// average, a tooltip and a zoom slider.
func lossChart(pts []rundir.LossPoint, title string) *charts.Line {
	line := charts.NewLine()
	line.SetGlobalOptions(
		charts.WithInitializationOpts(opts.Initialization{Width: "720px", Height: "320px", ChartID: "loba_loss_" + randomID(), Renderer: "svg"}),
		charts.WithTitleOpts(opts.Title{Title: title, TitleStyle: &opts.TextStyle{FontSize: 14}}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Right: "10"}),
		charts.WithXAxisOpts(opts.XAxis{Name: "step", Type: "category"}),
		charts.WithYAxisOpts(opts.YAxis{Name: "loss", Type: "value", Scale: opts.Bool(true)}),
		charts.WithDataZoomOpts(opts.DataZoom{Type: "slider", Start: 0, End: 100}),
	)
	steps := make([]int, len(pts))
	raw := make([]opts.LineData, len(pts))
	sm := smooth(pts, 0.9)
	smoothed := make([]opts.LineData, len(pts))
	for i, p := range pts {
		steps[i] = p.Step
		raw[i] = opts.LineData{Value: p.Loss}
		smoothed[i] = opts.LineData{Value: sm[i]}
	}
	line.SetXAxis(steps).
		AddSeries("loss", raw, charts.WithLineStyleOpts(opts.LineStyle{Width: 1, Color: "#9ecae1"}),
			charts.WithItemStyleOpts(opts.ItemStyle{Color: "#9ecae1"})).
		AddSeries("smoothed", smoothed, charts.WithLineStyleOpts(opts.LineStyle{Width: 2, Color: "#08519c"}),
			charts.WithItemStyleOpts(opts.ItemStyle{Color: "#08519c"}))
	line.SetSeriesOptions(charts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(false)}))
	return line
}

// echartsHTML renders a go-echarts chart as one self-contained notebook output: a <div> and a script
// that draws it with ECharts (SVG renderer). The script finds ECharts however the front end offers
// it — already loaded; through requirejs (classic Notebook, VS Code); or by adding a <script src> tag
// (JupyterLab, Colab's per-output iframes) — loading it from the CDN when it is reachable, and
// otherwise inlining the offline copy install.sh put in kernelsetup.EChartsPath() (LOBA_ECHARTS_INLINE=1
// forces that). Each call's ids are new, so re-running a cell never redeclares anything.
func echartsHTML(chart *charts.Line) (string, error) {
	chart.Validate()
	snippet := chart.RenderSnippet()
	var option any
	if err := json.Unmarshal([]byte(snippet.Option), &option); err != nil {
		return "", fmt.Errorf("lobanb: chart option is not JSON: %w", err)
	}
	optJSON, err := json.Marshal(option)
	if err != nil {
		return "", err
	}
	id := chart.ChartID
	var b strings.Builder
	fmt.Fprintf(&b, `<div id="%s" style="width:%s;height:%s"></div>`+"\n", id, chart.Initialization.Width, chart.Initialization.Height)
	inline := ""
	if useInlineECharts() {
		js, err := os.ReadFile(kernelsetup.EChartsPath())
		if err != nil {
			return "", fmt.Errorf("lobanb: the ECharts CDN is out of reach and there is no offline copy (%v): run ./install.sh", err)
		}
		// The UMD build sees no define/exports/module, so it sets window.echarts (also under requirejs).
		inline = "(function(define, exports, module){\n" + string(js) + "\n})(undefined, undefined, undefined);\n"
	}
	fmt.Fprintf(&b, "<script type=\"text/javascript\">\n%s(function() {\n", inline)
	fmt.Fprintf(&b, "  var option = %s;\n", optJSON)
	fmt.Fprintf(&b, "  var src = %q;\n", EChartsCDN)
	fmt.Fprintf(&b, `  function draw(ec) {
    var el = document.getElementById(%q);
    if (!el || !ec) { return; }
    ec.init(el, null, {renderer: "svg"}).setOption(option);
  }
  if (window.echarts) { draw(window.echarts); return; }
  if (typeof window.requirejs === "function") {
    window.requirejs.config({paths: {echarts_loba: src.replace(/\.js$/, "")}});
    window.requirejs(["echarts_loba"], function(ec) { window.echarts = ec; draw(ec); });
    return;
  }
  var s = document.createElement("script");
  s.src = src;
  s.onload = function() { draw(window.echarts); };
  document.head.appendChild(s);
})();
</script>
`, id)
	return b.String(), nil
}

// useInlineECharts decides once per process: inline the offline copy when asked to, or when the
// CDN does not answer within two seconds.
func useInlineECharts() bool {
	switch os.Getenv("LOBA_ECHARTS_INLINE") {
	case "1", "true":
		return true
	case "0", "false":
		return false
	}
	cdnOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, EChartsCDN, nil)
		if err == nil {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				cdnReachable = resp.StatusCode < 400
			}
		}
	})
	return !cdnReachable
}

var (
	cdnOnce      sync.Once
	cdnReachable bool
)

// randomID is a short unique id for chart elements.
func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
