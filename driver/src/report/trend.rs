//! Trends over campaigns for results/index.html: verdict counts,
//! throughput and p99 latency of each campaign, oldest to newest, drawn as
//! inline SVG (the index stays one self-contained file). Each campaign is
//! one column; hovering it (an SVG `<title>`) names it and gives its
//! numbers.

use crate::report::index::stamp_in;
use crate::report::summary::{html_escape, Summary};
use std::fmt::Write as _;
use std::path::Path;

/// Campaigns drawn at most (the newest); older ones are in the table.
pub const CAMPAIGNS_DRAWN: usize = 200;

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 190.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 36.0;

/// One campaign's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The campaign folder's name.
    pub name: String,
    /// Its `YYYYMMDDTHHMMSS`, the order.
    pub stamp: String,
    /// Runs valid, invalid, unknown.
    pub counts: [usize; 3],
    /// Median over runs of client operations per second of the run's wall
    /// time (checking included, as `elapsed_s` is); None when no run says.
    pub ops_per_s: Option<f64>,
    /// Median and largest of the runs' p99 latencies, ms.
    pub p99_ms: Option<(f64, f64)>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl Point {
    /// The numbers of campaign `name`.
    pub fn of(name: &str, s: &Summary) -> Self {
        let rates: Vec<f64> = s
            .runs
            .iter()
            .filter(|r| r.elapsed_s > 0.0)
            .filter_map(|r| r.ops.map(|o| o as f64 / r.elapsed_s))
            .collect();
        let p99s: Vec<f64> = s.runs.iter().filter_map(|r| r.p99_ms).collect();
        let max = p99s.iter().copied().fold(f64::NAN, f64::max);
        Point {
            name: name.to_string(),
            stamp: stamp_in(name),
            counts: [s.counts.valid, s.counts.invalid, s.counts.unknown],
            ops_per_s: median(rates),
            p99_ms: median(p99s).map(|m| (m, max)),
        }
    }
}

/// The campaigns directly under `results`, oldest first, the newest
/// [`CAMPAIGNS_DRAWN`] of them. Unreadable summaries are skipped (the
/// table says so for them).
pub fn points(results: &Path) -> Vec<Point> {
    let mut out: Vec<Point> = std::fs::read_dir(results)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let s = Summary::read(&e.path().join("summary.json")).ok()?;
            Some(Point::of(&e.file_name().to_string_lossy(), &s))
        })
        .collect();
    out.sort_by(|a, b| (&a.stamp, &a.name).cmp(&(&b.stamp, &b.name)));
    let skip = out.len().saturating_sub(CAMPAIGNS_DRAWN);
    out.split_off(skip)
}

/// A y axis top at a round number at or above `max`.
fn nice_top(max: f64) -> f64 {
    if max.is_nan() || max <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|&t| t >= max)
        .unwrap_or(10.0 * p)
}

/// A frame: title, y axis with 0, the middle and the top labelled, x
/// labels (the campaign dates, thinned so they do not collide).
fn frame(s: &mut String, title: &str, unit: &str, top: f64, pts: &[Point]) {
    let plot_w = WIDTH - LEFT - RIGHT;
    let _ = writeln!(
        s,
        "<svg class=\"trend\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\"><text x=\"{LEFT}\" y=\"16\" font-size=\"14\" font-weight=\"bold\">{}</text>",
        html_escape(title)
    );
    let bottom = HEIGHT - BOTTOM;
    for frac in [0.0, 0.5, 1.0] {
        let y = bottom - frac * (bottom - TOP);
        let v = top * frac;
        let label = if top >= 10.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        };
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"12\" y=\"{:.1}\" transform=\"rotate(-90 12 {:.1})\" text-anchor=\"middle\">{}</text>",
        (TOP + bottom) / 2.0,
        (TOP + bottom) / 2.0,
        html_escape(unit)
    );
    // About one date label per 90 pixels.
    let every = ((pts.len() as f64 * 90.0 / plot_w).ceil() as usize).max(1);
    for (i, p) in pts.iter().enumerate().step_by(every) {
        let day = if p.stamp.len() == 15 {
            format!(
                "{}-{}-{} {}:{}",
                &p.stamp[0..4],
                &p.stamp[4..6],
                &p.stamp[6..8],
                &p.stamp[9..11],
                &p.stamp[11..13]
            )
        } else {
            p.name.chars().take(16).collect()
        };
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            x_of(i, pts.len()),
            bottom + 16.0,
            html_escape(&day)
        );
    }
}

/// The centre of column `i` of `n`.
fn x_of(i: usize, n: usize) -> f64 {
    let plot_w = WIDTH - LEFT - RIGHT;
    LEFT + (i as f64 + 0.5) * plot_w / n.max(1) as f64
}

fn y_of(v: f64, top: f64) -> f64 {
    let bottom = HEIGHT - BOTTOM;
    bottom - (v / top).clamp(0.0, 1.0) * (bottom - TOP)
}

/// A legend entry at row `row` right of the plot.
fn legend(s: &mut String, row: usize, colour: &str, label: &str) {
    let x = WIDTH - RIGHT + 14.0;
    let y = TOP + 6.0 + row as f64 * 18.0;
    let _ = writeln!(
        s,
        "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"10\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
        y - 9.0,
        x + 18.0,
        y,
        html_escape(label)
    );
}

const VERDICT_COLOURS: [(&str, &str); 3] = [
    ("valid", "#2ca02c"),
    ("invalid", "#d62728"),
    ("unknown", "#e6a700"),
];

fn verdicts_svg(pts: &[Point]) -> String {
    let mut s = String::new();
    let top = nice_top(
        pts.iter()
            .map(|p| p.counts.iter().sum::<usize>() as f64)
            .fold(0.0, f64::max),
    );
    frame(&mut s, "Runs per campaign by verdict", "runs", top, pts);
    let bar_w = ((WIDTH - LEFT - RIGHT) / pts.len().max(1) as f64 * 0.7).clamp(2.0, 40.0);
    for (i, p) in pts.iter().enumerate() {
        let x = x_of(i, pts.len()) - bar_w / 2.0;
        let _ = write!(
            s,
            "<g><title>{}: {} valid, {} invalid, {} unknown</title>",
            html_escape(&p.name),
            p.counts[0],
            p.counts[1],
            p.counts[2]
        );
        let mut base = 0.0;
        for (k, (_, colour)) in VERDICT_COLOURS.iter().enumerate() {
            let n = p.counts[k] as f64;
            if n > 0.0 {
                let (y0, y1) = (y_of(base + n, top), y_of(base, top));
                let _ = write!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"{y0:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" fill=\"{colour}\"/>",
                    (y1 - y0).max(0.5)
                );
            }
            base += n;
        }
        let _ = writeln!(s, "</g>");
    }
    for (row, (name, colour)) in VERDICT_COLOURS.iter().enumerate() {
        legend(&mut s, row, colour, name);
    }
    s.push_str("</svg>\n");
    s
}

/// Lines of `series` (label, colour, value per campaign), points hoverable.
fn lines_svg(
    title: &str,
    unit: &str,
    pts: &[Point],
    series: &[(&str, &str, Vec<Option<f64>>)],
) -> String {
    let mut s = String::new();
    let max = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().flatten().copied())
        .fold(0.0, f64::max);
    let top = nice_top(max);
    frame(&mut s, title, unit, top, pts);
    for (row, (label, colour, values)) in series.iter().enumerate() {
        let path: Vec<String> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                v.map(|v| format!("{:.1},{:.1}", x_of(i, pts.len()), y_of(v, top)))
            })
            .collect();
        if path.len() > 1 {
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                path.join(" ")
            );
        }
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = v {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{colour}\"><title>{}: {label} {v:.1} {}</title></circle>",
                    x_of(i, pts.len()),
                    y_of(*v, top),
                    html_escape(&pts[i].name),
                    html_escape(unit)
                );
            }
        }
        legend(&mut s, row, colour, label);
    }
    s.push_str("</svg>\n");
    s
}

/// The trend section of the index: three plots, or a line saying there
/// are no campaigns yet.
pub fn trend_html(pts: &[Point]) -> String {
    let mut s = String::from("<h2>Campaigns over time</h2>\n");
    if pts.is_empty() {
        s.push_str("<p>No campaigns yet (run <code>raft-driver campaign</code>).</p>\n");
        return s;
    }
    let _ = writeln!(
        s,
        "<p>{} campaigns, oldest left; hover a column or point for its name and numbers.</p>",
        pts.len()
    );
    s.push_str(&verdicts_svg(pts));
    s.push_str(&lines_svg(
        "Throughput: median over runs of operations per second (run time, checking included)",
        "ops/s",
        pts,
        &[(
            "median",
            "#1f77b4",
            pts.iter().map(|p| p.ops_per_s).collect(),
        )],
    ));
    s.push_str(&lines_svg(
        "p99 latency of the runs",
        "ms",
        pts,
        &[
            (
                "median p99",
                "#9467bd",
                pts.iter().map(|p| p.p99_ms.map(|m| m.0)).collect(),
            ),
            (
                "worst p99",
                "#ff7f0e",
                pts.iter().map(|p| p.p99_ms.map(|m| m.1)).collect(),
            ),
        ],
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::RunRecord;
    use raft_checker::Validity;

    fn record(verdict: Validity, ops: u64, elapsed_s: f64, p99: f64) -> RunRecord {
        RunRecord {
            index: 0,
            nemesis: "kill".into(),
            nodes: 3,
            seed: 1,
            bug: None,
            verdict,
            reason: None,
            ops: Some(ops),
            p99_ms: Some(p99),
            elapsed_s,
            dir: None,
        }
    }

    #[test]
    fn a_campaign_point_has_its_verdict_counts_median_rate_and_p99s() {
        let s = Summary::new(
            "campaign-20261201T100000".into(),
            vec![],
            3,
            vec![
                record(Validity::Valid, 1000, 10.0, 5.0),
                record(Validity::Invalid, 3000, 10.0, 50.0),
                record(Validity::Unknown, 2000, 10.0, 7.0),
            ],
        );
        let p = Point::of("campaign-20261201T100000", &s);
        assert_eq!(p.counts, [1, 1, 1]);
        assert_eq!(p.ops_per_s, Some(200.0));
        assert_eq!(p.p99_ms, Some((7.0, 50.0)));
        assert_eq!(p.stamp, "20261201T100000");
    }

    #[test]
    fn the_trend_draws_one_column_per_campaign_oldest_first() {
        let d = tempfile::tempdir().unwrap();
        for (name, verdict) in [
            ("campaign-20261202T000000", Validity::Invalid),
            ("campaign-20261201T000000", Validity::Valid),
        ] {
            let c = d.path().join(name);
            std::fs::create_dir_all(&c).unwrap();
            Summary::new(name.into(), vec![], 1, vec![record(verdict, 100, 1.0, 3.0)])
                .write_all(&c)
                .unwrap();
        }
        let pts = points(d.path());
        let names: Vec<&str> = pts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["campaign-20261201T000000", "campaign-20261202T000000"]
        );
        let html = trend_html(&pts);
        assert_eq!(html.matches("<svg").count(), 3);
        assert!(html.contains("campaign-20261202T000000: 0 valid, 1 invalid, 0 unknown"));
        assert!(trend_html(&[]).contains("No campaigns yet"));
    }

    #[test]
    fn y_axes_end_at_round_numbers_above_the_data() {
        assert_eq!(nice_top(0.0), 1.0);
        assert_eq!(nice_top(7.0), 10.0);
        assert_eq!(nice_top(130.0), 200.0);
        assert_eq!(nice_top(500.0), 500.0);
    }
}
