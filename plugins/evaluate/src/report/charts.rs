//! The report's charts, as inline SVG: bar and bubble charts drawn with `plotters`'
//! SVG backend, and the heatmaps, the RFM grid and the pipeline graph written by hand
//! (fixed grids of labelled cells are simpler that way).
//!
//! Every piece of text from the data is escaped (plotters escapes what it draws; the
//! hand-written charts use [`esc`]). No chart refers to anything outside the document:
//! plotters' `xmlns` attribute (a namespace name, not a fetch, but still a URL) is
//! dropped, which inline SVG in HTML does not need.

use super::esc::{esc, num, truncate};
use super::read::StepInfo;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use segflow_sdk::{Error, Result};
use std::collections::HashMap;
use std::fmt::Write;

/// A colour.
pub type Rgb = (u8, u8, u8);

/// Unique ids for SVG definitions (markers, gradients) within one report.
#[derive(Default)]
pub struct Ids(usize);

impl Ids {
    pub fn next(&mut self, prefix: &str) -> String {
        self.0 += 1;
        format!("{prefix}{}", self.0)
    }
}

pub fn hex(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

fn lerp(a: Rgb, b: Rgb, t: f64) -> Rgb {
    let t = t.clamp(0.0, 1.0);
    let m = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * t).round() as u8;
    (m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// A colour along evenly spaced `stops` at `t` in 0..1.
fn ramp(stops: &[Rgb], t: f64) -> Rgb {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let k = stops.len() - 1;
    let pos = t * k as f64;
    let i = (pos.floor() as usize).min(k - 1);
    lerp(stops[i], stops[i + 1], pos - i as f64)
}

/// Blue below, white at, red above: for an index against a base of 100, on a log scale
/// that saturates at 50 and 200.
pub const DIVERGING: [Rgb; 5] = [
    (33, 102, 172),
    (146, 197, 222),
    (247, 247, 247),
    (244, 165, 130),
    (178, 24, 43),
];

/// The colour of an index (100 = the base average).
pub fn index_colour(index: f64) -> Rgb {
    if !index.is_finite() || index <= 0.0 {
        return if index <= 0.0 && index.is_finite() {
            DIVERGING[0]
        } else {
            (221, 221, 221)
        };
    }
    let t = (index / 100.0).log2().clamp(-1.0, 1.0);
    ramp(&DIVERGING, (t + 1.0) / 2.0)
}

/// White to dark blue, for counts and shares (0..1).
pub const SEQUENTIAL: [Rgb; 4] = [
    (247, 251, 255),
    (198, 219, 239),
    (66, 146, 198),
    (8, 48, 107),
];

pub fn sequential(t: f64) -> Rgb {
    ramp(&SEQUENTIAL, t)
}

/// A perceptually even purple-to-yellow scale (viridis stops), for the map's value.
pub const VIRIDIS: [Rgb; 5] = [
    (68, 1, 84),
    (59, 82, 139),
    (33, 145, 140),
    (94, 201, 98),
    (253, 231, 37),
];

pub fn viridis(t: f64) -> Rgb {
    ramp(&VIRIDIS, t)
}

/// Twelve distinguishable colours (Tableau 10, olive and plum), for segments: the
/// standard RFM map's eleven segments each get their own.
pub const CATEGORICAL: [Rgb; 12] = [
    (78, 121, 167),
    (242, 142, 43),
    (225, 87, 89),
    (118, 183, 178),
    (89, 161, 79),
    (237, 201, 72),
    (176, 122, 161),
    (255, 157, 167),
    (156, 117, 95),
    (186, 176, 172),
    (188, 189, 34),
    (106, 61, 154),
];

/// Dark or light text, whichever reads on `bg`.
pub fn text_on(bg: Rgb) -> &'static str {
    let l = 0.2126 * bg.0 as f64 + 0.7152 * bg.1 as f64 + 0.0722 * bg.2 as f64;
    if l > 150.0 {
        "#1a1a1a"
    } else {
        "#ffffff"
    }
}

/// The opening tag of a chart: scales down with the page, never up.
fn svg_open(w: u32, h: u32, aria: &str) -> String {
    format!(
        "<svg class=\"chart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\" font-family=\"system-ui, sans-serif\">",
        esc(aria)
    )
}

/// Replace plotters' root tag by ours (no `xmlns`, responsive, labelled).
fn finish_plotters(buf: String, w: u32, h: u32, aria: &str) -> Result<String> {
    let start = buf
        .find("<svg")
        .ok_or_else(|| Error::new("plotters wrote no SVG"))?;
    let end = buf[start..]
        .find('>')
        .map(|e| start + e + 1)
        .ok_or_else(|| Error::new("plotters wrote no SVG"))?;
    let mut out = String::with_capacity(buf.len() + 64);
    out.push_str(&svg_open(w, h, aria));
    out.push_str(&buf[end..]);
    Ok(out)
}

fn plot_err<E: std::fmt::Debug>(e: E) -> Error {
    Error::new(format!("drawing a chart failed: {e:?}"))
}

fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

/// One bar.
pub struct Bar {
    pub label: String,
    pub value: f64,
    /// Printed after the bar (e.g. `12.3%`).
    pub note: String,
}

/// A horizontal bar chart, first bar at the top.
pub fn hbars(bars: &[Bar], axis: &str, colour: Rgb, aria: &str) -> Result<String> {
    let n = bars.len().max(1) as i32;
    let labels: Vec<String> = bars.iter().map(|b| truncate(&b.label, 34)).collect();
    let longest = labels
        .iter()
        .map(|l| l.chars().map(char_width).sum::<f64>())
        .fold(0.0, f64::max);
    let label_w = (16.0 + 7.2 * longest).clamp(60.0, 280.0) as u32;
    let w = 860u32;
    let h = 56 + 28 * n as u32;
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let max = bars.iter().map(|b| finite(b.value)).fold(0.0, f64::max);
    let min = bars.iter().map(|b| finite(b.value)).fold(0.0, f64::min);
    let span = if max - min > 0.0 { max - min } else { 1.0 };
    // room right of the longest bar for its note
    let note_px = bars
        .iter()
        .map(|b| 12.0 + 7.6 * b.note.chars().map(char_width).sum::<f64>())
        .fold(0.0, f64::max);
    let plot_px = (w as f64 - label_w as f64 - 30.0).max(100.0);
    let room = (note_px / plot_px).clamp(0.08, 0.6);
    let lo = if min < 0.0 { min - 0.05 * span } else { 0.0 };
    let hi = max + (max - lo).max(span) * room / (1.0 - room);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin_top(8)
            .margin_right(18)
            .margin_left(4)
            .margin_bottom(2)
            .x_label_area_size(40)
            .y_label_area_size(label_w)
            .build_cartesian_2d(lo..hi, (0..n).into_segmented())
            .map_err(plot_err)?;
        let ylabel = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) => labels
                .get((n - 1 - *i) as usize)
                .cloned()
                .unwrap_or_default(),
            _ => String::new(),
        };
        let xlabel = |x: &f64| tick(*x, hi - lo);
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n as usize)
            .x_labels(6)
            .y_label_formatter(&ylabel)
            .x_label_formatter(&xlabel)
            .x_desc(axis)
            .label_style(("sans-serif", 16).into_font().color(&RGBColor(51, 51, 51)))
            .axis_desc_style(("sans-serif", 16).into_font().color(&RGBColor(85, 85, 85)))
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(228, 228, 228))
            .axis_style(RGBColor(170, 170, 170))
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let y = n - 1 - i as i32;
                let mut r = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(y)),
                        (finite(b.value), SegmentValue::Exact(y + 1)),
                    ],
                    rgb(colour).filled(),
                );
                r.set_margin(5, 5, 0, 0);
                r
            }))
            .map_err(plot_err)?;
        let note_style = TextStyle::from(("sans-serif", 16).into_font())
            .color(&RGBColor(51, 51, 51))
            .pos(Pos::new(HPos::Left, VPos::Center));
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                Text::new(
                    format!(" {}", b.note),
                    (
                        finite(b.value).max(0.0),
                        SegmentValue::CenterOf(n - 1 - i as i32),
                    ),
                    note_style.clone(),
                )
            }))
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    finish_plotters(buf, w, h, aria)
}

/// An axis tick: plotters' tick values carry float noise (`2.2e-16` for 0), so values
/// tiny against the axis' span print as 0.
fn tick(v: f64, span: f64) -> String {
    if v.abs() <= span.abs() * 1e-9 {
        "0".into()
    } else {
        num(v)
    }
}

/// Rough width of a character in ems: CJK and other wide characters count double.
fn char_width(c: char) -> f64 {
    if (c as u32) >= 0x1100 {
        1.9
    } else {
        1.0
    }
}

/// One bubble of the positioning map.
pub struct Bubble {
    pub label: String,
    pub x: f64,
    pub y: f64,
    /// Customers (the area).
    pub size: f64,
    /// The colour value.
    pub value: Option<f64>,
}

/// A bubble chart: position x/y, area by size, colour by value (viridis, low to high).
pub fn bubbles(points: &[Bubble], x_name: &str, y_name: &str, aria: &str) -> Result<String> {
    let (w, h) = (860u32, 560u32);
    let range = |vals: Vec<f64>| {
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() || !hi.is_finite() {
            return (-1.0, 1.0);
        }
        let span = if hi - lo > 1e-12 {
            hi - lo
        } else {
            lo.abs().max(1.0)
        };
        (lo - 0.18 * span, hi + 0.18 * span)
    };
    let pts: Vec<&Bubble> = points
        .iter()
        .filter(|p| p.x.is_finite() && p.y.is_finite())
        .collect();
    let (x0, x1) = range(pts.iter().map(|p| p.x).collect());
    let (y0, y1) = range(pts.iter().map(|p| p.y).collect());
    let max_size = pts.iter().map(|p| p.size).fold(0.0, f64::max);
    let vals: Vec<f64> = pts.iter().filter_map(|p| p.value).collect();
    let vmin = vals.iter().copied().fold(f64::INFINITY, f64::min);
    let vmax = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let colour = |v: Option<f64>| match v {
        Some(v) if vmax > vmin => viridis((v - vmin) / (vmax - vmin)),
        Some(_) => viridis(0.5),
        None => (170, 170, 170),
    };
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(plot_err)?;
        let xfmt = |v: &f64| tick(*v, x1 - x0);
        let yfmt = |v: &f64| tick(*v, y1 - y0);
        chart
            .configure_mesh()
            .x_desc(truncate(x_name, 90))
            .y_desc(truncate(y_name, 60))
            .x_label_formatter(&xfmt)
            .y_label_formatter(&yfmt)
            .label_style(("sans-serif", 15).into_font().color(&RGBColor(68, 68, 68)))
            .axis_desc_style(("sans-serif", 16).into_font().color(&RGBColor(51, 51, 51)))
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(232, 232, 232))
            .axis_style(RGBColor(170, 170, 170))
            .draw()
            .map_err(plot_err)?;
        let zero = ShapeStyle::from(RGBColor(150, 150, 150)).stroke_width(1);
        if x0 < 0.0 && x1 > 0.0 {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(0.0, y0), (0.0, y1)],
                    zero,
                )))
                .map_err(plot_err)?;
        }
        if y0 < 0.0 && y1 > 0.0 {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x0, 0.0), (x1, 0.0)],
                    zero,
                )))
                .map_err(plot_err)?;
        }
        let mut order: Vec<&&Bubble> = pts.iter().collect();
        order.sort_by(|a, b| b.size.total_cmp(&a.size));
        let radius = |s: f64| -> i32 {
            if max_size > 0.0 && s > 0.0 {
                (7.0 + 38.0 * (s / max_size).sqrt()).round() as i32
            } else {
                6
            }
        };
        chart
            .draw_series(order.iter().map(|p| {
                let c = colour(p.value);
                EmptyElement::at((p.x, p.y))
                    + Circle::new(
                        (0, 0),
                        radius(p.size),
                        ShapeStyle::from(rgb(c).mix(0.78)).filled(),
                    )
                    + Circle::new(
                        (0, 0),
                        radius(p.size),
                        ShapeStyle::from(RGBColor(255, 255, 255)).stroke_width(1),
                    )
            }))
            .map_err(plot_err)?;
        // labels: the largest bubbles first, each at the first spot around its bubble
        // that overlaps no label or bubble placed so far and stays inside the chart
        let label_style = TextStyle::from(("sans-serif", 16).into_font().style(FontStyle::Bold))
            .color(&RGBColor(34, 34, 34))
            .pos(Pos::new(HPos::Left, VPos::Center));
        let (px, py) = chart.plotting_area().get_pixel_range();
        let (left, right) = (
            px.start as f64 + 2.0,
            (w as f64 - 2.0).min(px.end as f64 + 40.0),
        );
        let (top, bottom) = (py.start as f64, py.end as f64 - 2.0);
        let circles: Vec<(f64, f64, f64)> = order
            .iter()
            .map(|p| {
                let (cx, cy) = chart.backend_coord(&(p.x, p.y));
                (cx as f64, cy as f64, radius(p.size) as f64)
            })
            .collect();
        let mut taken: Vec<(f64, f64, f64, f64)> = Vec::new();
        for (k, p) in order.iter().enumerate() {
            let text = truncate(&p.label, 28);
            let tw = 4.0 + 7.9 * text.chars().map(char_width).sum::<f64>();
            let th = 16.0;
            let (cx, cy, r) = circles[k];
            let d = r * 0.72 + 3.0;
            // (left x, centre y) candidates: NE, SE, E, NW, SW, W, N, S
            let spots = [
                (cx + d, cy - d),
                (cx + d, cy + d),
                (cx + r + 4.0, cy),
                (cx - d - tw, cy - d),
                (cx - d - tw, cy + d),
                (cx - r - 4.0 - tw, cy),
                (cx - tw / 2.0, cy - r - 10.0),
                (cx - tw / 2.0, cy + r + 10.0),
            ];
            let boxed = |(x, y): (f64, f64)| (x, y - th / 2.0, x + tw, y + th / 2.0);
            let clear = |b: &(f64, f64, f64, f64)| {
                b.0 >= left
                    && b.2 <= right
                    && b.1 >= top
                    && b.3 <= bottom
                    && taken
                        .iter()
                        .all(|t| b.2 <= t.0 || b.0 >= t.2 || b.3 <= t.1 || b.1 >= t.3)
                    && circles.iter().enumerate().all(|(j, c)| {
                        // the label may touch its own bubble, not cover another's centre
                        j == k
                            || !(c.0 > b.0 - 2.0
                                && c.0 < b.2 + 2.0
                                && c.1 > b.1 - 2.0
                                && c.1 < b.3 + 2.0)
                    })
            };
            let spot = spots
                .iter()
                .map(|s| boxed(*s))
                .find(|b| clear(b))
                .unwrap_or_else(|| boxed(spots[0]));
            taken.push(spot);
            root.draw(&Text::new(
                text,
                (
                    spot.0.round() as i32,
                    ((spot.1 + spot.3) / 2.0).round() as i32,
                ),
                label_style.clone(),
            ))
            .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    finish_plotters(buf, w, h, aria)
}

/// A horizontal colour legend: `stops` from `low` to `high` labels.
pub fn legend(stops: &[Rgb], low: &str, mid: Option<&str>, high: &str, ids: &mut Ids) -> String {
    let id = ids.next("grad");
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"legend\" width=\"380\" height=\"38\" viewBox=\"0 0 380 38\" role=\"img\" aria-label=\"colour scale from {} to {}\" font-family=\"system-ui, sans-serif\"><defs><linearGradient id=\"{id}\">",
        esc(low),
        esc(high)
    );
    let k = stops.len().saturating_sub(1).max(1);
    for (i, c) in stops.iter().enumerate() {
        let _ = write!(
            s,
            "<stop offset=\"{:.0}%\" stop-color=\"{}\"/>",
            100.0 * i as f64 / k as f64,
            hex(*c)
        );
    }
    let _ = write!(
        s,
        "</linearGradient></defs><rect x=\"10\" y=\"4\" width=\"360\" height=\"12\" rx=\"2\" fill=\"url(#{id})\" stroke=\"#ccc\"/><text x=\"10\" y=\"31\" font-size=\"12\" fill=\"#444\">{}</text>",
        esc(low)
    );
    if let Some(m) = mid {
        let _ = write!(
            s,
            "<text x=\"190\" y=\"31\" font-size=\"12\" fill=\"#444\" text-anchor=\"middle\">{}</text>",
            esc(m)
        );
    }
    let _ = write!(
        s,
        "<text x=\"370\" y=\"31\" font-size=\"12\" fill=\"#444\" text-anchor=\"end\">{}</text></svg>",
        esc(high)
    );
    s
}

/// One cell of a heatmap.
#[derive(Clone, Default)]
pub struct Cell {
    /// Fill colour; `None` is a grey "no value" cell.
    pub fill: Option<Rgb>,
    /// Printed in the cell.
    pub text: String,
    /// Tooltip.
    pub title: String,
}

/// A grid of labelled cells: rows top to bottom, columns left to right, column labels
/// slanted above.
pub struct Heatmap {
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    pub cells: Vec<Vec<Cell>>,
    pub aria: String,
    /// Optional titles over the row labels and the columns (e.g. `from \ to`).
    pub corner: Option<String>,
}

pub fn heatmap(hm: &Heatmap) -> String {
    let nr = hm.rows.len();
    let nc = hm.cols.len();
    let rows: Vec<String> = hm.rows.iter().map(|r| truncate(r, 30)).collect();
    let cols: Vec<String> = hm.cols.iter().map(|c| truncate(c, 26)).collect();
    let label_w = rows
        .iter()
        .map(|r| r.chars().map(char_width).sum::<f64>())
        .fold(4.0, f64::max)
        * 7.4
        + 16.0;
    let label_w = label_w.clamp(70.0, 240.0).round();
    let cw = ((860.0 - label_w) / nc.max(1) as f64)
        .clamp(46.0, 96.0)
        .floor();
    let ch = 30.0;
    let longest_col = cols
        .iter()
        .map(|c| c.chars().map(char_width).sum::<f64>())
        .fold(0.0, f64::max);
    // labels slanted at -40°: their height is about sin(40°) of their length
    let head = (longest_col * 6.6 * 0.66 + 22.0).clamp(30.0, 150.0).round();
    let w = (label_w + cw * nc as f64 + 60.0).ceil() as u32;
    let h = (head + ch * nr as f64 + 8.0).ceil() as u32;
    let mut s = svg_open(w, h, &hm.aria);
    if let Some(c) = &hm.corner {
        let _ = write!(
            s,
            "<text x=\"{:.0}\" y=\"{:.0}\" font-size=\"12\" fill=\"#666\" text-anchor=\"end\">{}</text>",
            label_w - 8.0,
            head - 8.0,
            esc(&truncate(c, 32))
        );
    }
    for (j, c) in cols.iter().enumerate() {
        let x = label_w + cw * (j as f64 + 0.5);
        let _ = write!(
            s,
            "<text transform=\"translate({x:.1},{:.1}) rotate(-40)\" font-size=\"12\" fill=\"#333\"><title>{}</title>{}</text>",
            head - 6.0,
            esc(&hm.cols[j]),
            esc(c)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = head + ch * i as f64;
        let _ = write!(
            s,
            "<text x=\"{:.0}\" y=\"{:.1}\" font-size=\"13\" fill=\"#222\" text-anchor=\"end\" dominant-baseline=\"central\"><title>{}</title>{}</text>",
            label_w - 8.0,
            y + ch / 2.0,
            esc(&hm.rows[i]),
            esc(r)
        );
        for j in 0..nc {
            let cell = hm
                .cells
                .get(i)
                .and_then(|r| r.get(j))
                .cloned()
                .unwrap_or_default();
            let x = label_w + cw * j as f64;
            let fill = cell.fill.unwrap_or((236, 236, 236));
            let _ = write!(
                s,
                "<g><title>{}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" stroke=\"#fff\" stroke-width=\"1.5\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"{}\" text-anchor=\"middle\" dominant-baseline=\"central\">{}</text></g>",
                esc(&cell.title),
                cw,
                ch,
                hex(fill),
                x + cw / 2.0,
                y + ch / 2.0,
                if cell.fill.is_some() { text_on(fill) } else { "#888" },
                esc(&truncate(&cell.text, 9))
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// One cell of the RFM grid.
pub struct GridCell {
    /// Index into the grid's segments; `None` when no segment covers it.
    pub segment: Option<usize>,
    /// Customers in the cell, when known.
    pub customers: Option<u64>,
}

/// The R × FM grid: R score left (1) to right (`bins`, most recent), FM score bottom
/// (1) to top; each segment one colour with its name written once, at its cells' centre.
pub fn rfm_grid(
    bins: usize,
    cell: &dyn Fn(usize, usize) -> GridCell,
    segments: &[(String, Option<u64>)],
    aria: &str,
) -> String {
    let cs = (640.0 / bins as f64).clamp(90.0, 150.0).floor();
    let ch = (cs * 0.62).round();
    let (left, top) = (56.0, 10.0);
    let w = (left + cs * bins as f64 + 12.0) as u32;
    let h = (top + ch * bins as f64 + 52.0) as u32;
    let mut s = svg_open(w, h, aria);
    let mut members: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
    for r in 1..=bins {
        for fm in 1..=bins {
            let c = cell(r, fm);
            let x = left + cs * (r - 1) as f64;
            let y = top + ch * (bins - fm) as f64;
            let fill = c
                .segment
                .map(|i| CATEGORICAL[i % CATEGORICAL.len()])
                .unwrap_or((236, 236, 236));
            let name = c
                .segment
                .and_then(|i| segments.get(i))
                .map(|s| s.0.as_str())
                .unwrap_or("no segment");
            let count = c
                .customers
                .map(|n| format!(": {} customers", super::esc::int(n as i64)))
                .unwrap_or_default();
            let _ = write!(
                s,
                "<g><title>R {r}, FM {fm}: {}{count}</title><rect x=\"{x:.0}\" y=\"{y:.0}\" width=\"{cs:.0}\" height=\"{ch:.0}\" fill=\"{}\" fill-opacity=\"0.85\" stroke=\"#fff\" stroke-width=\"2\"/>",
                esc(name),
                hex(fill)
            );
            if let Some(n) = c.customers.filter(|n| *n > 0) {
                let _ = write!(
                    s,
                    "<text x=\"{:.0}\" y=\"{:.0}\" font-size=\"10.5\" fill=\"{}\" text-anchor=\"end\" opacity=\"0.85\">{}</text>",
                    x + cs - 5.0,
                    y + ch - 5.0,
                    text_on(fill),
                    super::esc::int(n as i64)
                );
            }
            s.push_str("</g>");
            if let Some(i) = c.segment {
                members.entry(i).or_default().push((r, fm));
            }
        }
    }
    // each segment's name once, in the member cell nearest the members' centre
    let mut named: Vec<(&usize, &Vec<(usize, usize)>)> = members.iter().collect();
    named.sort_by_key(|(i, _)| **i);
    for (i, cells) in named {
        let (mr, mf) = cells
            .iter()
            .fold((0.0, 0.0), |a, (r, f)| (a.0 + *r as f64, a.1 + *f as f64));
        let (mr, mf) = (mr / cells.len() as f64, mf / cells.len() as f64);
        let Some(&(r, fm)) = cells.iter().min_by(|a, b| {
            let d = |c: &(usize, usize)| (c.0 as f64 - mr).powi(2) + (c.1 as f64 - mf).powi(2);
            d(a).total_cmp(&d(b))
        }) else {
            continue;
        };
        let x = left + cs * (r as f64 - 0.5);
        let y = top + ch * (bins - fm) as f64 + ch / 2.0;
        let fill = CATEGORICAL[i % CATEGORICAL.len()];
        let name = segments.get(*i).map(|s| s.0.as_str()).unwrap_or("");
        let fits = (cs / 7.6) as usize;
        let lines = two_lines(name, fits);
        let first_y = y - 3.0 - 7.0 * (lines.len() as f64 - 1.0);
        for (k, line) in lines.iter().enumerate() {
            let _ = write!(
                s,
                "<text x=\"{x:.0}\" y=\"{:.0}\" font-size=\"12.5\" font-weight=\"600\" fill=\"{}\" text-anchor=\"middle\" pointer-events=\"none\">{}</text>",
                first_y + 14.0 * k as f64,
                text_on(fill),
                esc(line)
            );
        }
        let y = y + 7.0 * (lines.len() as f64 - 1.0);
        if let Some(n) = segments.get(*i).and_then(|s| s.1) {
            let _ = write!(
                s,
                "<text x=\"{x:.0}\" y=\"{:.0}\" font-size=\"11\" fill=\"{}\" text-anchor=\"middle\" pointer-events=\"none\">{}</text>",
                y + 11.0,
                text_on(fill),
                super::esc::int(n as i64)
            );
        }
    }
    for k in 1..=bins {
        let _ = write!(
            s,
            "<text x=\"{:.0}\" y=\"{:.0}\" font-size=\"12\" fill=\"#444\" text-anchor=\"middle\">{k}</text><text x=\"{:.0}\" y=\"{:.0}\" font-size=\"12\" fill=\"#444\" text-anchor=\"end\" dominant-baseline=\"central\">{k}</text>",
            left + cs * (k as f64 - 0.5),
            top + ch * bins as f64 + 16.0,
            left - 8.0,
            top + ch * (bins - k) as f64 + ch / 2.0
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.0}\" y=\"{:.0}\" font-size=\"13\" fill=\"#333\" text-anchor=\"middle\">Recency score (R) → more recent</text><text transform=\"translate(16,{:.0}) rotate(-90)\" font-size=\"13\" fill=\"#333\" text-anchor=\"middle\">FM score → buys more</text></svg>",
        left + cs * bins as f64 / 2.0,
        top + ch * bins as f64 + 40.0,
        top + ch * bins as f64 / 2.0
    );
    s
}

/// A name on one line of `fits` characters, or two split at a space, each cut to fit.
fn two_lines(name: &str, fits: usize) -> Vec<String> {
    if name.chars().count() <= fits {
        return vec![name.to_string()];
    }
    let mid = name.chars().count() / 2;
    let split = name
        .char_indices()
        .filter(|(_, c)| *c == ' ')
        .map(|(i, _)| i)
        .min_by_key(|i| (name[..*i].chars().count() as i64 - mid as i64).abs());
    match split {
        Some(i) => vec![truncate(&name[..i], fits), truncate(&name[i + 1..], fits)],
        None => vec![truncate(name, fits)],
    }
}

/// Fill of a stage's nodes.
pub fn stage_colour(stage: &str) -> Rgb {
    match stage {
        "collect" => (222, 235, 247),
        "clean" => (224, 243, 219),
        "segment" => (254, 230, 206),
        "position" => (236, 226, 240),
        "evaluate" => (253, 224, 221),
        _ => (240, 240, 240),
    }
}

/// Outline and mark of a step's status.
pub fn status_style(status: Option<&str>) -> (Rgb, &'static str, &'static str) {
    match status {
        Some("succeeded") => ((46, 125, 50), "✓", ""),
        Some("failed") => ((198, 40, 40), "✗", ""),
        Some("skipped") => ((140, 140, 140), "–", "4 3"),
        Some(_) => ((140, 140, 140), "?", "4 3"),
        None => ((25, 118, 210), "…", "5 3"),
    }
}

/// The pipeline as a layered graph: a step's column is its depth (longest chain of
/// inputs before it), nodes coloured by stage and outlined by status, with the time.
pub fn dag(steps: &[StepInfo], ids: &mut Ids) -> String {
    let n = steps.len();
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let parents: Vec<Vec<usize>> = steps
        .iter()
        .map(|s| {
            let mut p: Vec<usize> = s
                .needs
                .iter()
                .filter_map(|nd| index.get(nd.step.as_str()).copied())
                .collect();
            p.sort_unstable();
            p.dedup();
            p
        })
        .collect();
    let mut depth = vec![0usize; n];
    // relax until stable (steps usually arrive in order, so one pass settles it)
    for _ in 0..n.max(1) {
        let mut changed = false;
        for i in 0..n {
            let d = parents[i]
                .iter()
                .filter(|&&p| p != i)
                .map(|&p| depth[p] + 1)
                .max()
                .unwrap_or(0)
                .min(n);
            if d != depth[i] {
                depth[i] = d;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let layers = depth.iter().copied().max().map_or(0, |d| d + 1);
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for i in 0..n {
        columns[depth[i]].push(i);
    }
    // order each column by its parents' mean position, to keep edges short
    let mut slot = vec![0.0f64; n];
    for col in columns.iter_mut() {
        let key = |i: usize| -> f64 {
            let p = &parents[i];
            if p.is_empty() {
                f64::INFINITY
            } else {
                p.iter().map(|&q| slot[q]).sum::<f64>() / p.len() as f64
            }
        };
        let mut keyed: Vec<(f64, usize)> = col.iter().map(|&i| (key(i), i)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *col = keyed.into_iter().map(|(_, i)| i).collect();
        for (k, &i) in col.iter().enumerate() {
            slot[i] = k as f64 - (col.len() as f64 - 1.0) / 2.0;
        }
    }
    let (nw, nh, cg, rg, pad) = (164.0, 60.0, 40.0, 16.0, 8.0);
    let tallest = columns.iter().map(Vec::len).max().unwrap_or(1).max(1) as f64;
    // edges that skip a column arch over it: room above for the arches
    let spans_far = parents
        .iter()
        .enumerate()
        .any(|(i, ps)| ps.iter().any(|&p| depth[i] > depth[p] + 1));
    let top = if spans_far { 44.0 } else { pad };
    let w = (pad * 2.0 + layers as f64 * nw + (layers.max(1) - 1) as f64 * cg).ceil() as u32;
    let h = (top + pad + tallest * nh + (tallest - 1.0) * rg).ceil() as u32;
    let mid = top + (h as f64 - top - pad) / 2.0;
    let mut pos = vec![(0.0f64, 0.0f64); n];
    for (c, col) in columns.iter().enumerate() {
        for &i in col {
            pos[i] = (
                pad + c as f64 * (nw + cg),
                mid + slot[i] * (nh + rg) - nh / 2.0,
            );
        }
    }
    let arrow = ids.next("arrow");
    // scale down with the page, but not below 60%: wider graphs scroll instead
    let mut s = svg_open(w, h, "pipeline steps and their inputs").replacen(
        "<svg class=\"chart\"",
        &format!(
            "<svg class=\"chart\" style=\"min-width:{}px\"",
            (w as f64 * 0.6).round()
        ),
        1,
    );
    let _ = write!(
        s,
        "<defs><marker id=\"{arrow}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#888\"/></marker></defs>"
    );
    for (i, ps) in parents.iter().enumerate() {
        for &p in ps {
            if p == i {
                continue;
            }
            let (x1, y1) = (pos[p].0 + nw, pos[p].1 + nh / 2.0);
            let (x2, y2) = (pos[i].0 - 1.0, pos[i].1 + nh / 2.0);
            let dx = ((x2 - x1) / 2.0).max(20.0);
            if depth[i] > depth[p] + 1 {
                // arch over the columns in between, from the top of both boxes
                let (x1, y1) = (pos[p].0 + nw * 0.75, pos[p].1);
                let (x2, y2) = (pos[i].0 + nw * 0.25, pos[i].1 - 1.0);
                let peak = (y1.min(y2) - 6.0).clamp(8.0, 40.0);
                let _ = write!(
                    s,
                    "<path d=\"M{x1:.1},{y1:.1} C{x1:.1},{:.1} {x2:.1},{:.1} {x2:.1},{y2:.1}\" fill=\"none\" stroke=\"#999\" stroke-width=\"1.4\" marker-end=\"url(#{arrow})\"/>",
                    y1 - peak * 1.33,
                    y2 - peak * 1.33
                );
                continue;
            }
            let _ = write!(
                s,
                "<path d=\"M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}\" fill=\"none\" stroke=\"#999\" stroke-width=\"1.4\" marker-end=\"url(#{arrow})\"/>",
                x1 + dx,
                x2 - dx
            );
        }
    }
    for (i, st) in steps.iter().enumerate() {
        let (x, y) = pos[i];
        let (outline, mark, dash) = status_style(st.status.as_deref());
        let time = st
            .duration_ms
            .filter(|_| st.status.is_some())
            .map(super::esc::duration)
            .unwrap_or_else(|| "running".into());
        let status = st.status.as_deref().unwrap_or("running");
        let rows: Vec<String> = st
            .rows
            .iter()
            .map(|(p, r)| format!("{p}: {} rows", super::esc::int(*r as i64)))
            .collect();
        let mut tip = format!(
            "{} — {} ({})\n{status}, {time}",
            st.id, st.component, st.stage
        );
        if !rows.is_empty() {
            tip.push('\n');
            tip.push_str(&rows.join(", "));
        }
        if let Some(e) = &st.error {
            tip.push('\n');
            tip.push_str(e);
        }
        let _ = write!(
            s,
            "<g><title>{}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{nw}\" height=\"{nh}\" rx=\"7\" fill=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{}/>",
            esc(&tip),
            hex(stage_colour(&st.stage)),
            hex(outline),
            if status == "failed" { "2.6" } else { "1.6" },
            if dash.is_empty() {
                String::new()
            } else {
                format!(" stroke-dasharray=\"{dash}\"")
            }
        );
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13.5\" font-weight=\"600\" fill=\"#1a1a1a\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11.5\" fill=\"#555\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11.5\" fill=\"{}\">{mark} {}</text></g>",
            x + 10.0,
            y + 19.0,
            esc(&truncate(&st.id, 19)),
            x + 10.0,
            y + 35.0,
            esc(&truncate(&st.component, 25)),
            x + 10.0,
            y + 51.0,
            hex(outline),
            esc(&time)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_colours_diverge_around_100() {
        assert_eq!(index_colour(100.0), DIVERGING[2]);
        assert_eq!(index_colour(200.0), DIVERGING[4]);
        assert_eq!(index_colour(400.0), DIVERGING[4]);
        assert_eq!(index_colour(50.0), DIVERGING[0]);
        assert_eq!(index_colour(f64::NAN), (221, 221, 221));
    }

    #[test]
    fn plotters_output_has_no_namespace_url() {
        let svg = hbars(
            &[Bar {
                label: "<a> & \"b\"".into(),
                value: 3.0,
                note: "x".into(),
            }],
            "customers",
            CATEGORICAL[0],
            "sizes",
        )
        .unwrap();
        assert!(!svg.contains("http"), "{svg}");
        assert!(svg.starts_with("<svg class=\"chart\""));
        assert!(svg.contains("&lt;a&gt; &amp; &quot;b&quot;"));
    }
}
