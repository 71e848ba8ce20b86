//! The bench's latency plot: one curve per target, phase and operation
//! kind, latency against quantile on a "nines" axis (50%, 90%, 99%, 99.9%),
//! as PNG and SVG, with the checker's embedded font.

use plotters::prelude::*;
use raft_checker::plot::{draw_legend, series_color};
use std::path::{Path, PathBuf};

/// One curve: its label and its sorted latencies in microseconds.
pub struct Curve {
    /// Legend text, e.g. "raft write c=64".
    pub label: String,
    /// Sorted latencies (µs).
    pub sorted_us: Vec<u64>,
}

const SIZE: (u32, u32) = (1000, 600);
/// Rightmost quantile drawn: 99.99%.
const MAX_NINES: f64 = 4.0;

fn nines(q: f64) -> f64 {
    -(1.0 - q).max(1e-9).log10()
}

/// Points of one curve: (nines, latency ms), at most ~400 per curve.
fn points(sorted: &[u64]) -> Vec<(f64, f64)> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let steps = 400;
    for s in 0..=steps {
        let x = MAX_NINES * s as f64 / steps as f64;
        let q = 1.0 - 10f64.powf(-x);
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        // Stop where the samples cannot resolve the quantile any more.
        if rank == n && s > 0 {
            out.push((
                nines((n as f64 - 0.5) / n as f64).min(MAX_NINES),
                sorted[n - 1] as f64 / 1000.0,
            ));
            break;
        }
        out.push((x, sorted[rank - 1] as f64 / 1000.0));
    }
    out
}

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    curves: &[Curve],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: &dyn std::fmt::Display| e.to_string();
    area.fill(&WHITE).map_err(|e| err(&e))?;
    let all: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.sorted_us.iter().map(|&u| u as f64 / 1000.0))
        .filter(|v| *v > 0.0)
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(0.0f64, f64::max);
    let (lo, hi) = if all.is_empty() {
        (0.01, 10.0)
    } else {
        (
            10f64.powf(lo.log10().floor()),
            10f64.powf(hi.log10().ceil()),
        )
    };
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..MAX_NINES, (lo..hi).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("quantile")
        .y_desc("latency (ms)")
        .x_labels(5)
        .x_label_formatter(&|x| match x.round() as i64 {
            0 => "0%".into(),
            1 => "90%".into(),
            2 => "99%".into(),
            3 => "99.9%".into(),
            4 => "99.99%".into(),
            _ => String::new(),
        })
        .y_label_formatter(&|y| format!("{y}"))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, c) in curves.iter().enumerate() {
        let col = series_color(i);
        chart
            .draw_series(LineSeries::new(points(&c.sorted_us), col.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(c.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2)));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    area.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Writes `name`.png and `name`.svg into `dir`; returns the files written.
pub fn write(
    dir: &Path,
    name: &str,
    title: &str,
    curves: &[Curve],
) -> Result<Vec<PathBuf>, String> {
    raft_checker::plot::register_fonts();
    let png = dir.join(format!("{name}.png"));
    let svg = dir.join(format!("{name}.svg"));
    draw(
        BitMapBackend::new(&png, SIZE).into_drawing_area(),
        title,
        curves,
    )?;
    draw(
        SVGBackend::new(&svg, SIZE).into_drawing_area(),
        title,
        curves,
    )?;
    Ok(vec![png, svg])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_rise_with_the_quantile_and_stop_at_the_slowest_sample() {
        let sorted: Vec<u64> = (1..=1000).collect();
        let p = points(&sorted);
        assert!(p.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert_eq!(p.last().unwrap().1, 1.0);
        assert!(points(&[]).is_empty());
    }

    #[test]
    fn plot_files_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let curves = vec![
            Curve {
                label: "a".into(),
                sorted_us: (100..2000).collect(),
            },
            Curve {
                label: "b".into(),
                sorted_us: vec![],
            },
        ];
        let files = write(dir.path(), "lat", "t", &curves).unwrap();
        for f in files {
            assert!(std::fs::metadata(&f).unwrap().len() > 0, "{}", f.display());
        }
    }
}
