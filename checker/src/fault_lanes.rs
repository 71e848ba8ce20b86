//! A strip under a time plot with one lane per fault kind, each fault a
//! band in its kind's lane. Faults overlap (a pause during a partition):
//! shading them all over the plot blends the colours into mud and hides
//! which was on when, lanes keep each one readable.

use crate::faults::FaultInterval;
use crate::palette::fault_colour;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Pixels per lane.
pub const LANE_PX: u32 = 16;

/// The strip's height for `kinds` fault kinds (0 when there are none).
pub fn lanes_height(kinds: usize) -> u32 {
    if kinds == 0 {
        0
    } else {
        10 + LANE_PX * kinds as u32
    }
}

/// The fault kinds of `faults`, by name (the lane order, the same in
/// every run that has the same kinds).
pub fn kinds(faults: &[FaultInterval]) -> Vec<String> {
    let mut k: Vec<String> = faults.iter().map(|f| f.name.clone()).collect();
    k.sort();
    k.dedup();
    k
}

/// Draws the lanes in `area`, its x axis the plot's (`0..t_max`, x unit
/// `x_div` ns) with the same side margins as the plot above, so that a
/// band sits right under the points of its time.
pub fn draw_fault_lanes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    faults: &[FaultInterval],
    x_div: f64,
    t_max: f64,
    y_label_px: u32,
) -> Result<(), String> {
    let err = |e: String| e;
    let names = kinds(faults);
    if names.is_empty() {
        return Ok(());
    }
    let n = names.len() as f64;
    let mut chart = ChartBuilder::on(area)
        .margin_left(10)
        .margin_right(10)
        .margin_bottom(6)
        .y_label_area_size(y_label_px)
        .build_cartesian_2d(0f64..t_max, 0f64..n)
        .map_err(|e| err(e.to_string()))?;
    // The lane backgrounds, then each fault in its lane (top lane first).
    for (i, name) in names.iter().enumerate() {
        let y = n - 1.0 - i as f64;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, y + 0.1), (t_max, y + 0.9)],
                RGBColor(0xf4, 0xf4, 0xf4).filled(),
            )))
            .map_err(|e| err(e.to_string()))?;
        let (r, g, b) = fault_colour(name);
        let colour = RGBColor(r, g, b);
        chart
            .draw_series(faults.iter().filter(|f| &f.name == name).map(|f| {
                // A fault never stopped is paler: its end is the history's.
                let alpha = if f.closed { 0.85 } else { 0.4 };
                Rectangle::new(
                    [
                        (f.start_ns as f64 / x_div, y + 0.1),
                        (
                            (f.end_ns as f64 / x_div).max(f.start_ns as f64 / x_div),
                            y + 0.9,
                        ),
                    ],
                    colour.mix(alpha).filled(),
                )
            }))
            .map_err(|e| err(e.to_string()))?;
        // The lane's name in the label column, level with the lane.
        let (_, py) = chart.backend_coord(&(0.0, y + 0.5));
        let (_, base_y) = area.get_base_pixel();
        area.draw(&Text::new(
            name.clone(),
            (4, py - base_y - 6),
            ("sans-serif", 14).into_font().color(&colour),
        ))
        .map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}
