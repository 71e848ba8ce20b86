//! Plots of a history: latency-raw, latency-quantiles and rate, as PNG and
//! SVG, with fault intervals shaded. Fonts come from the embedded DejaVu
//! Sans, so no system font or gnuplot is needed.

use crate::compact::{CompactHistory, Pairing};
use crate::fault_lanes::{draw_fault_lanes, kinds, lanes_height};
use crate::faults::{fault_intervals_of, FaultInterval};
use crate::history::Event;
use crate::operation::Outcome;
use crate::palette::{fault_colour, op_colour, Rgb};
use crate::plot_legend::{draw_side_legend, marker_of, Entry, Mark, Shape};
use crate::plot_sample::sample_ids;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// At most this many ok operations at or below the ok p99 are drawn on
/// latency-raw (evenly sampled), so that a long history still gives a
/// small SVG; fail, info and tail operations are all drawn (see
/// [`crate::plot_sample`]).
pub const MAX_RAW_POINTS: usize = 20_000;
/// Time windows on the quantile and rate plots.
const WINDOWS: usize = 60;
const SIZE: (u32, u32) = (1000, 500);

static FONTS: Once = Once::new();

/// Registers DejaVu Sans as every family plotters may ask for.
pub fn register_fonts() {
    FONTS.call_once(|| {
        for family in ["sans-serif", "serif", "monospace"] {
            for style in [
                FontStyle::Normal,
                FontStyle::Bold,
                FontStyle::Italic,
                FontStyle::Oblique,
            ] {
                let bytes = match style {
                    FontStyle::Bold => dejavu::sans::bold(),
                    _ => dejavu::sans::regular(),
                };
                // The embedded font is known good; a failure leaves plotters
                // without text rather than aborting the report.
                let _ = plotters::style::register_font(family, style, bytes);
            }
        }
    });
}

/// What the plots need of one operation, read from the history's row
/// when needed: no copy of a million operations is made for the plots.
#[derive(Debug, Clone, Copy)]
struct PlotOp {
    /// Its f, as an id of [`PlotData::fs`].
    f: u32,
    outcome: Outcome,
    invoke_time: u64,
    complete_time: Option<u64>,
}

impl PlotOp {
    fn latency_ns(&self) -> Option<u64> {
        self.complete_time
            .map(|c| c.saturating_sub(self.invoke_time))
    }
}

/// The data all three plots share.
struct PlotData<'a> {
    /// The client operations, paired leniently, in invoke order.
    history: &'a CompactHistory,
    /// The f names in the operations, sorted, with their ids.
    fs: Vec<(String, u32)>,
    faults: Vec<FaultInterval>,
    /// x-axis extent: seconds, or history indexes when untimed.
    t_max: f64,
    /// Divisor from nanoseconds to the x unit (1 when untimed).
    x_div: f64,
    /// Divisor from nanoseconds to the latency unit (1 when untimed).
    lat_div: f64,
    /// Axis labels: x, latency, rate.
    labels: [&'static str; 3],
}

impl<'a> PlotData<'a> {
    fn new(history: &'a CompactHistory) -> Self {
        // Jepsen histories without :time carry their index as time; plot
        // them against history order rather than pretend it is seconds.
        let facts = history.facts();
        let untimed = facts.untimed;
        let (x_div, lat_div, labels) = if untimed {
            (
                1.0,
                1.0,
                [
                    "history index (no timestamps)",
                    "latency (events)",
                    "operations / event",
                ],
            )
        } else {
            (1e9, 1e6, ["time (s)", "latency (ms)", "operations / s"])
        };
        let end = facts.max_time.unwrap_or(0);
        let t_max = end as f64 / x_div;
        let mut ids: Vec<u32> = (0..history.len()).map(|i| history.op_f_id(i)).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut fs: Vec<(String, u32)> = ids
            .into_iter()
            .map(|id| (history.f_name(id).to_string(), id))
            .collect();
        fs.sort();
        PlotData {
            x_div,
            lat_div,
            labels,
            history,
            fs,
            faults: fault_intervals_of(history.named(), end),
            t_max: t_max.max(1e-6),
        }
    }

    /// Operation `id` as the plots see it.
    fn op(&self, id: usize) -> PlotOp {
        let h = self.history;
        let (invoke_time, complete_time) = h.op_times(id);
        PlotOp {
            f: h.op_f_id(id),
            outcome: h.op_outcome(id),
            invoke_time,
            complete_time,
        }
    }

    /// Every operation as the plots see it, in invoke order.
    fn ops(&self) -> impl Iterator<Item = PlotOp> + '_ {
        (0..self.history.len()).map(|id| self.op(id))
    }
}

/// The colour of the `i`-th line series (also the bench plot's palette).
pub fn series_color(i: usize) -> RGBColor {
    const C: [RGBColor; 8] = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
        RGBColor(0xe3, 0x77, 0xc2),
        RGBColor(0x7f, 0x7f, 0x7f),
    ];
    C[i % C.len()]
}

type DrawResult = Result<(), String>;

/// Draws a chart's legend at `position` in the one style of every plot
/// here and of raft-driver's bench plot.
pub fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Shades each fault lightly over the full height of the chart, in its
/// kind's colour: the lanes below say which fault it is, the shade only
/// leads the eye up to the points of that time.
fn shade_faults<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    faults: &[FaultInterval],
    x_div: f64,
    y: (f64, f64),
) -> DrawResult {
    chart
        .draw_series(faults.iter().map(|f| {
            let (r, g, b) = fault_colour(&f.name);
            Rectangle::new(
                [
                    (f.start_ns as f64 / x_div, y.0),
                    (f.end_ns as f64 / x_div, y.1),
                ],
                RGBColor(r, g, b).mix(0.08).filled(),
            )
        }))
        .map_err(err)?;
    Ok(())
}

/// A chart with time on x and latency on a log scale on y, its mesh drawn
/// and the faults shaded: the frame both latency plots share.
fn log_latency_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    d: &PlotData,
    caption: &str,
    (y_min, y_max): (f64, f64),
) -> Result<
    ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, LogCoord<f64>>>,
    String,
> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(Y_LABEL_PX)
        .build_cartesian_2d(0f64..d.t_max, (y_min..y_max).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(d.labels[0])
        .y_desc(d.labels[1])
        .draw()
        .map_err(err)?;
    shade_faults(&mut chart, &d.faults, d.x_div, (y_min, y_max))?;
    Ok(chart)
}

/// Pixels left of the data for the y axis labels (and the fault lanes'
/// names, which share the column).
const Y_LABEL_PX: u32 = 100;
/// Pixels right of the data for the legend.
const LEGEND_PX: u32 = 210;

fn rgb((r, g, b): Rgb) -> RGBColor {
    RGBColor(r, g, b)
}

/// Outcomes as drawn: pending is drawn (and coloured) as info.
fn drawn_outcome(o: Outcome) -> Outcome {
    if o == Outcome::Pending {
        Outcome::Info
    } else {
        o
    }
}

fn latency_raw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    d: &PlotData,
) -> Result<Vec<Entry>, String> {
    let sample = sample_ids(
        d.history.len(),
        |i| d.op(i).outcome,
        |i| d.op(i).latency_ns(),
        MAX_RAW_POINTS,
    );
    let drawn: Vec<PlotOp> = sample.drawn.iter().map(|&i| d.op(i)).collect();
    let lat_ms = |o: &PlotOp| (o.latency_ns().unwrap_or(0) as f64 / d.lat_div).max(1e-3);
    let y_min = drawn.iter().map(lat_ms).fold(f64::INFINITY, f64::min);
    let y_max = drawn.iter().map(lat_ms).fold(0.0, f64::max);
    let (y_min, y_max) = decades(drawn.is_empty(), y_min, y_max);
    let caption = format!(
        "Latency of each operation: {} of {} ok operations drawn",
        sample.ok_drawn, sample.ok_total
    );
    let mut chart = log_latency_chart(area, d, &caption, (y_min, y_max))?;
    let mut legend: Vec<Entry> = vec![(None, "operations".into())];
    // Ok first, so that failures and uncertain ones are drawn on top.
    for outcome in [Outcome::Ok, Outcome::Info, Outcome::Fail] {
        for (f, id) in &d.fs {
            let pts: Vec<(f64, f64)> = drawn
                .iter()
                .filter(|o| drawn_outcome(o.outcome) == outcome && o.f == *id)
                .map(|o| (o.invoke_time as f64 / d.x_div, lat_ms(o)))
                .collect();
            if pts.is_empty() {
                continue;
            }
            let c = op_colour(f, outcome.as_str());
            let color = rgb(c);
            let shape = marker_of(f);
            let style = color.filled();
            match shape {
                Shape::Circle => chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 2, style)))
                    .map(|_| ()),
                Shape::Triangle => chart
                    .draw_series(pts.iter().map(|&p| TriangleMarker::new(p, 3, style)))
                    .map(|_| ()),
                Shape::Cross => chart
                    .draw_series(pts.iter().map(|&p| Cross::new(p, 3, color.stroke_width(1))))
                    .map(|_| ()),
                Shape::Square => {
                    chart
                        .draw_series(pts.iter().map(|&p| {
                            EmptyElement::at(p) + Rectangle::new([(-2, -2), (2, 2)], style)
                        }))
                        .map(|_| ())
                }
            }
            .map_err(err)?;
            legend.push((
                Some(Mark::Point(c, shape)),
                format!("{f} {} ({})", outcome.as_str(), pts.len()),
            ));
        }
    }
    Ok(legend)
}

/// A log axis from the power of ten below the data to the one above, so
/// that it always carries labelled ticks.
fn decades(empty: bool, lo: f64, hi: f64) -> (f64, f64) {
    if empty || lo.is_nan() || lo <= 0.0 || !hi.is_finite() {
        return (1e-3, 1.0);
    }
    let lo = 10f64.powf(lo.log10().floor());
    let mut hi = 10f64.powf(hi.log10().ceil());
    if hi <= lo {
        hi = lo * 10.0;
    }
    (lo, hi)
}

fn window_of(t_ns: u64, d: &PlotData) -> usize {
    ((t_ns as f64 / d.x_div / d.t_max * WINDOWS as f64) as usize).min(WINDOWS - 1)
}

fn latency_quantiles<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    d: &PlotData,
) -> Result<Vec<Entry>, String> {
    let mut windows: Vec<Vec<u64>> = vec![Vec::new(); WINDOWS];
    for o in d.ops() {
        if let (Some(l), Outcome::Ok) = (o.latency_ns(), o.outcome) {
            windows[window_of(o.invoke_time, d)].push(l);
        }
    }
    let width = d.t_max / WINDOWS as f64;
    let mut lines: Vec<(&str, Vec<(f64, f64)>)> = vec![
        ("p50", vec![]),
        ("p95", vec![]),
        ("p99", vec![]),
        ("max", vec![]),
    ];
    for (i, w) in windows.iter_mut().enumerate() {
        if w.is_empty() {
            continue;
        }
        let q = crate::stats::Quantiles::of(w);
        let x = (i as f64 + 0.5) * width;
        for (line, v) in lines
            .iter_mut()
            .zip([q.p50_ms, q.p95_ms, q.p99_ms, q.max_ms])
        {
            line.1.push((x, (v * 1e6 / d.lat_div).max(1e-3)));
        }
    }
    let all: Vec<f64> = lines.iter().flat_map(|l| l.1.iter().map(|p| p.1)).collect();
    let y_min = all.iter().copied().fold(f64::INFINITY, f64::min);
    let y_max = all.iter().copied().fold(0.0, f64::max);
    let (y_min, y_max) = decades(all.is_empty(), y_min, y_max);
    let mut chart = log_latency_chart(
        area,
        d,
        "Latency quantiles of ok operations",
        (y_min, y_max),
    )?;
    let mut legend: Vec<Entry> = vec![(None, "ok latency".into())];
    for (i, (name, pts)) in lines.into_iter().enumerate() {
        let color = series_color(i);
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(err)?;
        legend.push((Some(Mark::Line(color.rgb())), name.to_string()));
    }
    Ok(legend)
}

fn rate<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    d: &PlotData,
) -> Result<Vec<Entry>, String> {
    let width = d.t_max / WINDOWS as f64;
    let mut by_id: BTreeMap<(u32, Outcome), Vec<f64>> = BTreeMap::new();
    for o in d.ops() {
        let t = o.complete_time.unwrap_or(o.invoke_time);
        by_id
            .entry((o.f, drawn_outcome(o.outcome)))
            .or_insert_with(|| vec![0.0; WINDOWS])[window_of(t, d)] += 1.0 / width;
    }
    let name = |id: u32| d.fs.iter().find(|(_, i)| *i == id).map(|(n, _)| n.clone());
    let series: BTreeMap<(String, Outcome), Vec<f64>> = by_id
        .into_iter()
        .map(|((id, outcome), counts)| ((name(id).unwrap_or_default(), outcome), counts))
        .collect();
    let y_max = series
        .values()
        .flat_map(|v| v.iter().copied())
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption("Throughput by f and outcome", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(Y_LABEL_PX)
        .build_cartesian_2d(0f64..d.t_max, 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(d.labels[0])
        .y_desc(d.labels[2])
        .y_label_formatter(&|v| {
            if y_max >= 10.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
        .draw()
        .map_err(err)?;
    shade_faults(&mut chart, &d.faults, d.x_div, (0.0, y_max))?;
    let mut legend: Vec<Entry> = vec![(None, "operations".into())];
    for ((f, outcome), counts) in series {
        let c = op_colour(&f, outcome.as_str());
        let pts: Vec<(f64, f64)> = counts
            .iter()
            .enumerate()
            .map(|(w, &c)| ((w as f64 + 0.5) * width, c))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, rgb(c).stroke_width(2)))
            .map_err(err)?;
        legend.push((Some(Mark::Line(c)), format!("{f} {}", outcome.as_str())));
    }
    Ok(legend)
}

/// The plot names, without extension.
pub const PLOTS: [&str; 3] = ["latency-raw", "latency-quantiles", "rate"];

/// Writes the three plots as PNG and SVG into `dir`; returns the files written.
pub fn write_plots(dir: &Path, events: &[Event]) -> std::io::Result<Vec<PathBuf>> {
    let history = CompactHistory::from_events(events, Pairing::Lenient).unwrap_or_default();
    write_history_plots(dir, &history)
}

/// [`write_plots`] of a compact history (operations paired as
/// [`crate::operation::pair_lenient`] pairs them).
pub fn write_history_plots(dir: &Path, history: &CompactHistory) -> std::io::Result<Vec<PathBuf>> {
    register_fonts();
    std::fs::create_dir_all(dir)?;
    let d = PlotData::new(history);
    let size = (SIZE.0, SIZE.1 + lanes_height(kinds(&d.faults).len()));
    let mut written = Vec::new();
    for name in PLOTS {
        let png = dir.join(format!("{name}.png"));
        framed(
            name,
            &BitMapBackend::new(&png, size).into_drawing_area(),
            &d,
        )
        .map_err(|e| std::io::Error::other(format!("{name}.png: {e}")))?;
        written.push(png);
        let svg = dir.join(format!("{name}.svg"));
        framed(name, &SVGBackend::new(&svg, size).into_drawing_area(), &d)
            .map_err(|e| std::io::Error::other(format!("{name}.svg: {e}")))?;
        written.push(svg);
    }
    Ok(written)
}

/// Draws plot `name` in the data part of `area`, the fault lanes under it
/// and the legend (the plot's entries, then the fault kinds) to its right.
fn framed<DB: DrawingBackend>(
    name: &str,
    area: &DrawingArea<DB, Shift>,
    d: &PlotData,
) -> DrawResult {
    area.fill(&WHITE).map_err(err)?;
    let (w, h) = area.dim_in_pixel();
    let (main, side) = area.split_horizontally(w.saturating_sub(LEGEND_PX));
    let names = kinds(&d.faults);
    let (plot, lanes) = main.split_vertically(h - lanes_height(names.len()));
    let mut legend = match name {
        "latency-raw" => latency_raw(&plot, d)?,
        "latency-quantiles" => latency_quantiles(&plot, d)?,
        _ => rate(&plot, d)?,
    };
    draw_fault_lanes(&lanes, &d.faults, d.x_div, d.t_max, Y_LABEL_PX)?;
    if !names.is_empty() {
        legend.push((None, "faults (lanes below)".into()));
        legend.extend(
            names
                .iter()
                .map(|n| (Some(Mark::Band(fault_colour(n))), n.clone())),
        );
    }
    draw_side_legend(&side, &legend)?;
    area.present().map_err(err)
}
