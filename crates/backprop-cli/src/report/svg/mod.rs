//! Small hand-written SVG charts: one frame with labelled axes (linear or log), lines,
//! points, bars, filled-contour heat maps with a colour bar, and a legend. The output
//! is plain inline SVG with no scripts or external fonts, so a page that holds it opens
//! anywhere.

use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Distinct colours for series (Tableau 10, readable on white and by most colour-blind
/// viewers).
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

mod axis;

pub use axis::{Axis, Scale};

pub use crate::summary::fmt_num;

/// XML-escapes text.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Where the legend box goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corner {
    /// Upper right inside the plot area.
    TopRight,
    /// Upper left inside the plot area.
    TopLeft,
    /// Lower left inside the plot area.
    BottomLeft,
    /// Lower right inside the plot area.
    BottomRight,
}

enum Swatch {
    Line { color: String, dashed: bool },
    Dot(String),
    Box(String),
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// Colours of a filled-contour map: value bands on a log or linear scale.
pub struct ColorBar {
    /// What the colours mean, with units.
    pub label: String,
    /// Band edges, increasing (one more than the number of bands).
    pub edges: Vec<f64>,
    /// Whether the edges are spaced in log.
    pub log: bool,
}

/// One chart under construction.
pub struct Plot {
    id: usize,
    title: String,
    x: Axis,
    y: Axis,
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    body: String,
    legend: Vec<(String, Swatch)>,
    corner: Corner,
    colorbar: Option<ColorBar>,
    x_ticks: Option<Vec<(f64, String)>>,
    y_ticks: Option<Vec<(f64, String)>>,
}

impl Plot {
    /// An empty chart of the default size (640 x 400).
    pub fn new(title: &str, x: Axis, y: Axis) -> Plot {
        Plot {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            title: title.to_string(),
            x,
            y,
            width: 640.0,
            height: 400.0,
            left: 78.0,
            right: 20.0,
            top: 36.0,
            bottom: 52.0,
            body: String::new(),
            legend: Vec::new(),
            corner: Corner::TopRight,
            colorbar: None,
            x_ticks: None,
            y_ticks: None,
        }
    }

    /// Sets the size in pixels.
    pub fn size(mut self, width: f64, height: f64) -> Plot {
        self.width = width;
        self.height = height;
        self
    }

    /// Puts the legend in `corner`.
    pub fn legend_at(mut self, corner: Corner) -> Plot {
        self.corner = corner;
        self
    }

    /// Uses these ticks on the x axis instead of computed ones.
    pub fn x_ticks(mut self, ticks: Vec<(f64, String)>) -> Plot {
        self.x_ticks = Some(ticks);
        self
    }

    /// Uses these ticks on the y axis instead of computed ones.
    pub fn y_ticks(mut self, ticks: Vec<(f64, String)>) -> Plot {
        self.y_ticks = Some(ticks);
        self
    }

    fn plot_w(&self) -> f64 {
        self.width - self.left - self.right - if self.colorbar.is_some() { 90.0 } else { 0.0 }
    }

    fn plot_h(&self) -> f64 {
        self.height - self.top - self.bottom
    }

    /// Pixel position of a data point (None if off a log axis's domain).
    pub fn px(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let (fx, fy) = (self.x.frac(x)?, self.y.frac(y)?);
        if !(fx.is_finite() && fy.is_finite()) {
            return None;
        }
        // Far-away points are pulled in so the path still leaves the frame correctly.
        let c = |v: f64| v.clamp(-50.0, 51.0);
        Some((
            self.left + c(fx) * self.plot_w(),
            self.top + (1.0 - c(fy)) * self.plot_h(),
        ))
    }

    /// A polyline through `points` (broken where a point cannot be drawn).
    pub fn line(
        &mut self,
        points: &[(f64, f64)],
        color: &str,
        width: f64,
        dashed: bool,
        name: Option<&str>,
    ) {
        let dash = if dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let mut d = String::new();
        let mut pen_up = true;
        for &(x, y) in points {
            match self.px(x, y) {
                Some((px, py)) => {
                    let _ = write!(d, "{}{px:.1},{py:.1}", if pen_up { "M" } else { "L" });
                    pen_up = false;
                }
                None => pen_up = true,
            }
        }
        if !d.is_empty() {
            let _ = write!(self.body, "<path d=\"{d}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"{width}\" stroke-linejoin=\"round\"{dash} clip-path=\"url(#clip{})\"/>", self.id);
        }
        if let Some(n) = name {
            self.legend.push((
                n.to_string(),
                Swatch::Line {
                    color: color.to_string(),
                    dashed,
                },
            ));
        }
    }

    /// Dots at `points`.
    pub fn points(
        &mut self,
        points: &[(f64, f64)],
        color: &str,
        radius: f64,
        opacity: f64,
        name: Option<&str>,
    ) {
        let _ = write!(
            self.body,
            "<g fill=\"{color}\" fill-opacity=\"{opacity}\" clip-path=\"url(#clip{})\">",
            self.id
        );
        for &(x, y) in points {
            if let Some((px, py)) = self.px(x, y) {
                let _ = write!(
                    self.body,
                    "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"{radius}\"/>"
                );
            }
        }
        self.body.push_str("</g>");
        if let Some(n) = name {
            self.legend
                .push((n.to_string(), Swatch::Dot(color.to_string())));
        }
    }

    /// A marker (ring) at one point with a text label beside it.
    pub fn marker(&mut self, x: f64, y: f64, color: &str, label: &str) {
        if let Some((px, py)) = self.px(x, y) {
            let _ = write!(
                self.body,
                "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"6\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2.5\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" font-weight=\"bold\" fill=\"#111\" stroke=\"white\" stroke-width=\"3\" stroke-linejoin=\"round\" paint-order=\"stroke\">{}</text>",
                px + 9.0,
                py - 8.0,
                esc(label)
            );
        }
    }

    /// A filled rectangle between two data corners.
    pub fn rect(
        &mut self,
        (x0, y0): (f64, f64),
        (x1, y1): (f64, f64),
        fill: &str,
        name: Option<&str>,
    ) {
        if let (Some(a), Some(b)) = (self.px(x0, y0), self.px(x1, y1)) {
            let (l, t) = (a.0.min(b.0), a.1.min(b.1));
            let _ = write!(self.body, "<rect x=\"{l:.1}\" y=\"{t:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\" clip-path=\"url(#clip{})\"/>", (a.0 - b.0).abs(), (a.1 - b.1).abs(), self.id);
        }
        if let Some(n) = name {
            self.legend
                .push((n.to_string(), Swatch::Box(fill.to_string())));
        }
    }

    /// Text centred at a data point.
    pub fn text(&mut self, x: f64, y: f64, s: &str, color: &str, size: f64) {
        if let Some((px, py)) = self.px(x, y) {
            let _ = write!(self.body, "<text x=\"{px:.1}\" y=\"{:.1}\" font-size=\"{size}\" fill=\"{color}\" text-anchor=\"middle\">{}</text>", py + size * 0.35, esc(s));
        }
    }

    /// A filled-contour map of `values[i][j]` at `(xs[j], ys[i])`: each cell is coloured
    /// by the band of `bar.edges` its value falls in, so band borders are contour lines.
    /// Runs of equal colour along a row are merged to keep the SVG small.
    pub fn heat(&mut self, xs: &[f64], ys: &[f64], values: &[Vec<f64>], bar: ColorBar) {
        let bands = bar.edges.len().saturating_sub(1).max(1);
        let band = |v: f64| -> Option<usize> {
            if !v.is_finite() {
                return None;
            }
            Some(
                bar.edges
                    .iter()
                    .skip(1)
                    .position(|&e| v <= e)
                    .unwrap_or(bands - 1),
            )
        };
        let half = |s: &[f64], i: usize| -> (f64, f64) {
            let lo = if i == 0 {
                s[0] - (s.get(1).copied().unwrap_or(s[0] + 1.0) - s[0]) / 2.0
            } else {
                (s[i - 1] + s[i]) / 2.0
            };
            let hi = if i + 1 == s.len() {
                s[i] + (s[i] - s.get(i.wrapping_sub(1)).copied().unwrap_or(s[i] - 1.0)) / 2.0
            } else {
                (s[i] + s[i + 1]) / 2.0
            };
            (lo, hi)
        };
        let _ = write!(
            self.body,
            "<g shape-rendering=\"crispEdges\" clip-path=\"url(#clip{})\">",
            self.id
        );
        for (i, row) in values.iter().enumerate().take(ys.len()) {
            let (y0, y1) = half(ys, i);
            let mut j = 0;
            while j < row.len().min(xs.len()) {
                let b = band(row[j]);
                let mut k = j + 1;
                while k < row.len().min(xs.len()) && band(row[k]) == b {
                    k += 1;
                }
                let fill = b.map_or("#dddddd".to_string(), |b| {
                    viridis(b as f64 / (bands - 1).max(1) as f64)
                });
                let (x0, _) = half(xs, j);
                let (_, x1) = half(xs, k - 1);
                if let (Some(a), Some(c)) = (self.px(x0, y0), self.px(x1, y1)) {
                    // Overlap by half a pixel so no hairline gaps show between rows.
                    let _ = write!(self.body, "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"/>", a.0.min(c.0), a.1.min(c.1) - 0.5, (a.0 - c.0).abs() + 0.5, (a.1 - c.1).abs() + 1.0);
                }
                j = k;
            }
        }
        self.body.push_str("</g>");
        self.colorbar = Some(bar);
    }

    /// The finished `<svg>` element.
    pub fn finish(self) -> String {
        let (w, h, pw, ph) = (self.width, self.height, self.plot_w(), self.plot_h());
        let (l, t) = (self.left, self.top);
        let mut s = String::new();
        let _ = write!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{}\" font-family=\"sans-serif\">",
            esc(&self.title)
        );
        let _ = write!(s, "<title>{}</title><defs><clipPath id=\"clip{}\"><rect x=\"{l}\" y=\"{t}\" width=\"{pw}\" height=\"{ph}\"/></clipPath></defs>", esc(&self.title), self.id);
        let _ = write!(s, "<rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>");
        let _ = write!(s, "<text x=\"{:.1}\" y=\"22\" font-size=\"15\" font-weight=\"bold\" text-anchor=\"middle\">{}</text>", l + pw / 2.0, esc(&self.title));
        // Grid and ticks.
        let xt = self.x_ticks.clone().unwrap_or_else(|| self.x.ticks());
        let yt = self.y_ticks.clone().unwrap_or_else(|| self.y.ticks());
        s.push_str("<g font-size=\"11\" fill=\"#333\">");
        for (v, label) in &xt {
            if let Some(f) = self.x.frac(*v).filter(|f| (-1e-6..=1.0 + 1e-6).contains(f)) {
                let x = l + f * pw;
                let _ = write!(s, "<line x1=\"{x:.1}\" y1=\"{t}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#e4e4e4\"/>", t + ph);
                let _ = write!(
                    s,
                    "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>",
                    t + ph,
                    t + ph + 5.0
                );
                let _ = write!(
                    s,
                    "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                    t + ph + 18.0,
                    esc(label)
                );
            }
        }
        for (v, label) in &yt {
            if let Some(f) = self.y.frac(*v).filter(|f| (-1e-6..=1.0 + 1e-6).contains(f)) {
                let y = t + (1.0 - f) * ph;
                let _ = write!(s, "<line x1=\"{l}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e4e4e4\"/>", l + pw);
                let _ = write!(
                    s,
                    "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{l}\" y2=\"{y:.1}\" stroke=\"#333\"/>",
                    l - 5.0
                );
                let _ = write!(
                    s,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                    l - 8.0,
                    y + 4.0,
                    esc(label)
                );
            }
        }
        s.push_str("</g>");
        s.push_str(&self.body);
        let _ = write!(s, "<rect x=\"{l}\" y=\"{t}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#333\"/>");
        // Axis labels.
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" text-anchor=\"middle\">{}</text>",
            l + pw / 2.0,
            h - 10.0,
            esc(&self.x.label)
        );
        let _ = write!(s, "<text transform=\"translate(16 {:.1}) rotate(-90)\" font-size=\"13\" text-anchor=\"middle\">{}</text>", t + ph / 2.0, esc(&self.y.label));
        if let Some(bar) = &self.colorbar {
            s.push_str(&colorbar_svg(bar, l + pw + 18.0, t, ph));
        }
        if !self.legend.is_empty() {
            s.push_str(&self.legend_svg());
        }
        s.push_str("</svg>");
        s
    }

    fn legend_svg(&self) -> String {
        let (pw, ph) = (self.plot_w(), self.plot_h());
        let longest = self
            .legend
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0) as f64;
        let (bw, bh) = (longest * 6.6 + 42.0, self.legend.len() as f64 * 18.0 + 8.0);
        let x = match self.corner {
            Corner::TopRight | Corner::BottomRight => self.left + pw - bw - 8.0,
            Corner::TopLeft | Corner::BottomLeft => self.left + 8.0,
        };
        let y = match self.corner {
            Corner::TopRight | Corner::TopLeft => self.top + 8.0,
            Corner::BottomLeft | Corner::BottomRight => self.top + ph - bh - 8.0,
        };
        let mut s = format!("<g class=\"legend\" font-size=\"12\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"white\" fill-opacity=\"0.88\" stroke=\"#999\"/>");
        for (i, (name, sw)) in self.legend.iter().enumerate() {
            let cy = y + 14.0 + i as f64 * 18.0;
            match sw {
                Swatch::Line { color, dashed } => {
                    let dash = if *dashed {
                        " stroke-dasharray=\"6 4\""
                    } else {
                        ""
                    };
                    let _ = write!(s, "<line x1=\"{:.1}\" y1=\"{cy:.1}\" x2=\"{:.1}\" y2=\"{cy:.1}\" stroke=\"{color}\" stroke-width=\"2.5\"{dash}/>", x + 8.0, x + 30.0);
                }
                Swatch::Dot(color) => {
                    let _ = write!(
                        s,
                        "<circle cx=\"{:.1}\" cy=\"{cy:.1}\" r=\"4\" fill=\"{color}\"/>",
                        x + 19.0
                    );
                }
                Swatch::Box(color) => {
                    let _ = write!(s, "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"16\" height=\"10\" fill=\"{color}\"/>", x + 11.0, cy - 5.0);
                }
            }
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x + 36.0,
                cy + 4.0,
                esc(name)
            );
        }
        s.push_str("</g>");
        s
    }
}

fn colorbar_svg(bar: &ColorBar, x: f64, top: f64, height: f64) -> String {
    let bands = bar.edges.len().saturating_sub(1).max(1);
    let bh = height / bands as f64;
    let mut s = String::from("<g class=\"colorbar\" font-size=\"10\">");
    for b in 0..bands {
        let y = top + height - (b + 1) as f64 * bh;
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"14\" height=\"{:.1}\" fill=\"{}\"/>",
            bh + 0.5,
            viridis(b as f64 / (bands - 1).max(1) as f64)
        );
    }
    let every = (bands as f64 / 8.0).ceil() as usize;
    for (i, e) in bar.edges.iter().enumerate() {
        if !i.is_multiple_of(every.max(1)) && i + 1 != bar.edges.len() {
            continue;
        }
        let y = top + height - i as f64 * bh;
        let _ = write!(s, "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#333\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>", x + 14.0, x + 18.0, x + 20.0, y + 3.5, fmt_num(*e));
    }
    let _ = write!(s, "<text transform=\"translate({:.1} {:.1}) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\">{}</text>", x + 74.0, top + height / 2.0, esc(&format!("{}{}", bar.label, if bar.log { ", log-spaced bands" } else { "" })));
    s.push_str("</g>");
    s
}

/// Band edges for a colour bar over `values`: `bands` bands spaced evenly (in log when
/// `log` and all values are positive), capped at `cap` if given.
pub fn band_edges(
    values: impl IntoIterator<Item = f64>,
    bands: usize,
    log: bool,
    cap: Option<f64>,
) -> (Vec<f64>, bool) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    let hi = cap.map_or(hi, |c| hi.min(c));
    if !lo.is_finite() || !hi.is_finite() {
        return (vec![0.0, 1.0], false);
    }
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let log = log && lo > 0.0;
    let edges = (0..=bands)
        .map(|i| {
            let t = i as f64 / bands as f64;
            if log {
                (lo.ln() + t * (hi.ln() - lo.ln())).exp()
            } else {
                lo + t * (hi - lo)
            }
        })
        .collect();
    (edges, log)
}

/// The viridis colour map at `t` in `[0, 1]` (matplotlib's, sampled at nine points and
/// interpolated linearly).
pub fn viridis(t: f64) -> String {
    const STOPS: [(f64, f64, f64); 9] = [
        (68.0, 1.0, 84.0),
        (71.0, 44.0, 122.0),
        (59.0, 81.0, 139.0),
        (44.0, 113.0, 142.0),
        (33.0, 144.0, 141.0),
        (39.0, 173.0, 129.0),
        (92.0, 200.0, 99.0),
        (170.0, 220.0, 50.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * (STOPS.len() - 1) as f64;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

/// A histogram of `values` over `bins` equal bins spanning `lo..hi`: (left edges, counts).
pub fn histogram(values: &[f32], lo: f64, hi: f64, bins: usize) -> Vec<(f64, f64)> {
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0.0; bins];
    for &v in values {
        let v = v as f64;
        if v.is_finite() && width > 0.0 {
            let b = (((v - lo) / width).floor().max(0.0) as usize).min(bins - 1);
            counts[b] += 1.0;
        }
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, c)| (lo + i as f64 * width, c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_and_cover_the_range() {
        let a = Axis::new("x", 0.13, 9.7, Scale::Linear);
        let t: Vec<f64> = a.ticks().into_iter().map(|t| t.0).collect();
        assert_eq!(t, vec![2.0, 4.0, 6.0, 8.0]);
        let labels: Vec<String> = Axis::new("x", -0.05, 0.12, Scale::Linear)
            .ticks()
            .into_iter()
            .map(|t| t.1)
            .collect();
        assert_eq!(labels, ["-0.05", "0.00", "0.05", "0.10"]);
        let labels: Vec<String> = Axis::new("x", 0.0, 14.0, Scale::Linear)
            .ticks()
            .into_iter()
            .map(|t| t.1)
            .collect();
        assert_eq!(labels, ["0.0", "2.5", "5.0", "7.5", "10.0", "12.5"]);
    }

    #[test]
    fn log_ticks_are_powers_of_ten() {
        let t: Vec<String> = Axis::new("lr", 1e-6, 1.0, Scale::Log)
            .ticks()
            .into_iter()
            .map(|t| t.1)
            .collect();
        assert_eq!(t, ["10⁻⁶", "10⁻⁵", "10⁻⁴", "0.001", "0.01", "0.1", "1"]);
        let t: Vec<f64> = Axis::new("c", 0.3, 4.0, Scale::Log)
            .ticks()
            .into_iter()
            .map(|t| t.0)
            .collect();
        assert_eq!(t, vec![0.5, 1.0, 2.0]);
    }

    #[test]
    fn points_map_into_the_frame() {
        let p = Plot::new(
            "t",
            Axis::new("x", 0.0, 10.0, Scale::Linear),
            Axis::new("y", 1.0, 100.0, Scale::Log),
        );
        let (x0, y0) = p.px(0.0, 1.0).unwrap();
        let (x1, y1) = p.px(10.0, 100.0).unwrap();
        assert_eq!((x0, y0), (p.left, p.top + p.plot_h()));
        assert_eq!((x1, y1), (p.left + p.plot_w(), p.top));
        let (_, ym) = p.px(5.0, 10.0).unwrap();
        assert!((ym - (p.top + p.plot_h() / 2.0)).abs() < 1e-9);
        assert!(p.px(1.0, 0.0).is_none(), "zero is off a log axis");
    }

    #[test]
    fn histogram_counts_every_value_once() {
        let h = histogram(&[0.0, 0.1, 0.5, 0.99, 1.0, -3.0, 7.0], 0.0, 1.0, 4);
        assert_eq!(
            h.iter().map(|b| b.1).collect::<Vec<_>>(),
            vec![3.0, 0.0, 1.0, 3.0]
        );
        assert_eq!(viridis(0.0), "#440154");
        assert_eq!(viridis(1.0), "#fde725");
    }
}
