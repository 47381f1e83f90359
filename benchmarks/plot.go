package benchmarks

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot writes a PNG of four panels: the pipeline's rates over the whole
// benchmark, the latency distributions, CPU per component and phase, and
// the pipeline's throughput next to the raw Kafka ceiling.
func (r *Report) Plot(path string) error {
	panels := [][]func() (*plot.Plot, error){{r.ratesPlot, r.latencyPlot}, {r.cpuPlot, r.ceilingPlot}}
	plots := make([][]*plot.Plot, len(panels))
	for i, row := range panels {
		for _, f := range row {
			p, err := f()
			if err != nil {
				return fmt.Errorf("plot: %w", err)
			}
			plots[i] = append(plots[i], p)
		}
	}
	img := vgimg.New(vg.Points(1400), vg.Points(1000))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 2, PadX: vg.Points(20), PadY: vg.Points(20), PadTop: vg.Points(10), PadBottom: vg.Points(10), PadLeft: vg.Points(10), PadRight: vg.Points(10)}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		for j, p := range plots[i] {
			p.Draw(canvases[i][j])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// ratesPlot is records/s ingested and processed and sink rows/s, per
// second, on a log scale (the flood is a hundred times the agents' pace).
func (r *Report) ratesPlot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Pipeline rates (per second; phases: agents' pace → flood → changes flood, per run)"
	p.X.Label.Text = "seconds since the first phase"
	p.Y.Label.Text = "per second (log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var first int
	for first < len(r.Series) && r.Series[first].Phase == "" {
		first++
	}
	if first == len(r.Series) {
		return empty(p), nil
	}
	t0 := r.Series[first].At
	series := func(f func(Point) float64) plotter.XYs {
		var xy plotter.XYs
		for _, pt := range r.Series[first:] {
			// A log scale has no zero: an idle second shows as 1.
			xy = append(xy, plotter.XY{X: pt.At.Sub(t0).Seconds(), Y: math.Max(f(pt), 1)})
		}
		return xy
	}
	err := plotutil.AddLines(p,
		"ingested (records/s)", series(func(pt Point) float64 { return pt.Ingested }),
		"processed by scenario detection (records/s)", series(func(pt Point) float64 { return pt.Processed }),
		"inserted by the sink (rows/s)", series(func(pt Point) float64 { return pt.SinkRows }))
	p.Legend.Top = true
	// Room above the lines for the legend.
	p.Y.Min, p.Y.Max = 1, p.Y.Max*30
	return p, err
}

// latencyPlot is the distribution of the probes' latencies, all runs.
func (r *Report) latencyPlot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Latency from ingest to the change being visible (all probes)"
	p.X.Label.Text = "milliseconds"
	p.Y.Label.Text = "fraction of probes"
	var ch, api Latencies
	for _, x := range r.Runs {
		ch = append(ch, x.Fleet.latencyCH...)
		api = append(api, x.Fleet.latencyAPI...)
	}
	if len(ch)+len(api) == 0 {
		return empty(p), nil
	}
	cdf := func(l Latencies) plotter.XYs {
		s := slices.Clone(l)
		slices.Sort(s)
		xy := make(plotter.XYs, len(s))
		for i, v := range s {
			xy[i] = plotter.XY{X: v, Y: float64(i+1) / float64(len(s))}
		}
		return xy
	}
	err := plotutil.AddLines(p, "in ClickHouse (hosts table)", cdf(ch), "through the API (GET /api/v1/hosts/{id})", cdf(api))
	p.Legend.Top = false // bottom right: where a distribution has nothing
	p.Legend.YOffs = vg.Points(20)
	p.Y.Min, p.Y.Max = 0, 1
	return p, err
}

// cpuPlot is each component's CPU in each phase (medians of the runs).
func (r *Report) cpuPlot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "CPU per component (cores, median of the runs)"
	p.Y.Label.Text = "cores"
	names := r.components()
	if len(names) == 0 {
		return empty(p), nil
	}
	phases := []struct {
		name  string
		usage func(RunResult) map[string]Usage
	}{
		{"agents' pace", func(x RunResult) map[string]Usage { return x.Fleet.Usage }},
		{"flood", func(x RunResult) map[string]Usage { return x.Flood.Usage }},
		{"changes flood", func(x RunResult) map[string]Usage { return x.Changes.Usage }},
	}
	w := vg.Points(14)
	for i, ph := range phases {
		vals := make(plotter.Values, len(names))
		for j, n := range names {
			vals[j] = Median(r.runs(func(x RunResult) float64 {
				if u, ok := ph.usage(x)[n]; ok {
					return u.CPU
				}
				return nan
			}))
			if math.IsNaN(vals[j]) {
				vals[j] = 0
			}
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(i-1) * w
		p.Add(bars)
		p.Legend.Add(ph.name, bars)
	}
	labels := make([]string, len(names))
	for i, n := range names {
		// Short enough to sit under a group of bars.
		labels[i] = strings.ReplaceAll(strings.Replace(n, compOther, "others", 1), " + ", "+\n")
	}
	p.NominalX(labels...)
	p.Legend.Top = true
	p.Y.Min = 0
	p.Y.Max *= 1.25 // room for the legend
	return p, nil
}

// ceilingPlot is each run's pipeline throughput as a share of a raw
// produce+consume of the same records.
func (r *Report) ceilingPlot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Pipeline throughput as % of raw Kafka (same records, same broker), per run"
	p.Y.Label.Text = "% of the raw franz-go produce+consume rate"
	if len(r.Runs) == 0 {
		return empty(p), nil
	}
	w := vg.Points(30)
	for i, ph := range []struct {
		name  string
		ratio func(RunResult) float64
	}{
		{"flood: records/s ingest → processed", func(x RunResult) float64 { return x.Flood.Ratio }},
		{"changes flood: changed discoveries/s → ClickHouse", func(x RunResult) float64 { return x.Changes.Ratio }},
	} {
		vals := plotter.Values(r.runs(func(x RunResult) float64 { return 100 * ph.ratio(x) }))
		for k, v := range vals {
			if math.IsNaN(v) {
				vals[k] = 0
			}
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(2*i-1) * w / 2
		p.Add(bars)
		p.Legend.Add(ph.name, bars)
	}
	names := make([]string, len(r.Runs))
	for i := range names {
		names[i] = fmt.Sprintf("run %d", i+1)
	}
	p.NominalX(names...)
	p.Legend.Top = true
	p.Y.Min = 0
	p.Y.Max *= 1.3 // room for the legend
	return p, nil
}

// empty marks a panel that has nothing to show.
func empty(p *plot.Plot) *plot.Plot {
	p.Title.Text += " — no data"
	// A log scale of nothing has no range to draw.
	p.Y.Scale, p.Y.Tick.Marker = plot.LinearScale{}, plot.DefaultTicks{}
	p.Title.TextStyle.Color = color.Gray{Y: 128}
	return p
}
