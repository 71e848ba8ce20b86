//! A legend drawn in its own area beside a plot, never over the data:
//! plotters' own series labels sit inside the plotting area and hid the
//! very points (a late failure, a slow tail) one looks for in the corner
//! they covered.

use crate::palette::Rgb;
use plotters::coord::Shift;
use plotters::prelude::*;

/// How an entry's sample is drawn.
#[derive(Debug, Clone, Copy)]
pub enum Mark {
    /// A point marker of the scatter (see [`marker_of`]).
    Point(Rgb, Shape),
    /// A line of a line chart.
    Line(Rgb),
    /// A band (a fault).
    Band(Rgb),
}

/// Marker shapes, one per f, so that f is told apart without colour too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// read
    Circle,
    /// write
    Triangle,
    /// cas
    Cross,
    /// append and others
    Square,
}

/// The marker of operations `f` (fixed by name, like the colours).
pub fn marker_of(f: &str) -> Shape {
    match f {
        "read" => Shape::Circle,
        "write" => Shape::Triangle,
        "cas" => Shape::Cross,
        _ => Shape::Square,
    }
}

/// Entries: a heading (no mark) or a marked label.
pub type Entry = (Option<Mark>, String);

/// Draws `entries` top to bottom in `area`; entries that do not fit are
/// summed up in a last line rather than drawn over the edge.
pub fn draw_side_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[Entry],
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (_, h) = area.dim_in_pixel();
    let row = 18i32;
    let fits = ((h as i32 - 30) / row).max(1) as usize;
    let shown = if entries.len() > fits {
        fits - 1
    } else {
        entries.len()
    };
    let text = ("sans-serif", 15).into_font().color(&BLACK);
    let bold = ("sans-serif", 15)
        .into_font()
        .style(FontStyle::Bold)
        .color(&BLACK);
    for (i, (mark, label)) in entries.iter().take(shown).enumerate() {
        let y = 30 + i as i32 * row;
        let Some(mark) = mark else {
            area.draw(&Text::new(label.clone(), (4, y - 6), bold.clone()))
                .map_err(err)?;
            continue;
        };
        match *mark {
            Mark::Point((r, g, b), shape) => {
                let c = RGBColor(r, g, b);
                let at = (12, y);
                match shape {
                    Shape::Circle => area.draw(&Circle::new(at, 4, c.filled())),
                    Shape::Triangle => area.draw(&TriangleMarker::new(at, 5, c.filled())),
                    Shape::Cross => area.draw(&Cross::new(at, 4, c.stroke_width(2))),
                    Shape::Square => {
                        area.draw(&Rectangle::new([(8, y - 4), (16, y + 4)], c.filled()))
                    }
                }
                .map_err(err)?;
            }
            Mark::Line((r, g, b)) => {
                area.draw(&PathElement::new(
                    vec![(4, y), (20, y)],
                    RGBColor(r, g, b).stroke_width(3),
                ))
                .map_err(err)?;
            }
            Mark::Band((r, g, b)) => {
                area.draw(&Rectangle::new(
                    [(4, y - 5), (20, y + 5)],
                    RGBColor(r, g, b).mix(0.6).filled(),
                ))
                .map_err(err)?;
            }
        }
        area.draw(&Text::new(label.clone(), (26, y - 6), text.clone()))
            .map_err(err)?;
    }
    if shown < entries.len() {
        let y = 30 + shown as i32 * row;
        area.draw(&Text::new(
            format!("… {} more", entries.len() - shown),
            (4, y - 6),
            text,
        ))
        .map_err(err)?;
    }
    Ok(())
}
