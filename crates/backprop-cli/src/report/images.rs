//! Small images in `report.html`: a grid of values (a filter, a feature map, an input
//! image) coloured by a scale and embedded as a PNG `data:` URI, so the page stays one
//! self-contained file. A 28x28 map is a few hundred bytes this way, where an SVG
//! rectangle per pixel would be tens of kilobytes.

use backprop::layer::Image;
use base64::Engine;

use super::svg::esc;

/// Negative end of the diverging scale (blue).
const NEGATIVE: [u8; 3] = [33, 102, 172];
/// Positive end of the diverging scale (red).
const POSITIVE: [u8; 3] = [178, 24, 43];
/// A tile's longer side is drawn at least this many CSS pixels (each value a square).
const TILE_PX: usize = 48;

/// How values become colours.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// White at `lo`, black at `hi` (and beyond), grey between.
    Grey {
        /// Value drawn white.
        lo: f32,
        /// Value drawn black.
        hi: f32,
    },
    /// White at 0, blue at `-max` and red at `+max` (and beyond).
    Diverging {
        /// Largest magnitude of the scale.
        max: f32,
    },
}

impl Scale {
    /// The scale for `values` seen together: grey from 0 to the largest when none is
    /// negative (a ReLU's or a pooling's output), diverging about 0 otherwise.
    pub fn fit(values: impl Iterator<Item = f32>) -> Scale {
        let (lo, hi) = values
            .filter(|v| v.is_finite())
            .fold((0.0f32, 0.0f32), |(a, b), v| (a.min(v), b.max(v)));
        if lo < 0.0 {
            Scale::Diverging {
                max: (-lo).max(hi).max(f32::MIN_POSITIVE),
            }
        } else {
            Scale::Grey {
                lo: 0.0,
                hi: hi.max(f32::MIN_POSITIVE),
            }
        }
    }

    /// The scale from the least to the largest of `values` in grey (for input images,
    /// whose scaling may shift them below zero).
    pub fn span(values: impl Iterator<Item = f32>) -> Scale {
        let (lo, hi) = values
            .filter(|v| v.is_finite())
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if lo < hi {
            Scale::Grey { lo, hi }
        } else {
            Scale::Grey {
                lo: 0.0,
                hi: hi.abs().max(f32::MIN_POSITIVE),
            }
        }
    }

    /// The colour of `v` (a non-finite value gets the scale's middle: white for
    /// diverging, mid-grey for grey).
    pub fn color(&self, v: f32) -> [u8; 3] {
        match *self {
            Scale::Grey { lo, hi } => {
                let t = if v.is_finite() {
                    ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
                } else {
                    0.5
                };
                let g = (255.0 * (1.0 - t)).round() as u8;
                [g, g, g]
            }
            Scale::Diverging { max } => {
                let t = if v.is_finite() {
                    (v / max).clamp(-1.0, 1.0)
                } else {
                    0.0
                };
                let end = if t < 0.0 { NEGATIVE } else { POSITIVE };
                let a = t.abs();
                end.map(|c| (255.0 + (f32::from(c) - 255.0) * a).round() as u8)
            }
        }
    }

    /// A short description of the scale for captions.
    pub fn describe(&self) -> String {
        match *self {
            Scale::Grey { lo, hi } => format!("white {} to black {}", num(lo), num(hi)),
            Scale::Diverging { max } => {
                format!("blue −{} through white 0 to red +{}", num(max), num(max))
            }
        }
    }
}

/// `v` with three significant digits.
pub fn num(v: f32) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.digits$}")
}

/// A PNG of `height x width` values (row-major) coloured by `scale`, as a `data:` URI.
pub fn png_uri(values: &[f32], height: usize, width: usize, scale: Scale) -> String {
    let rgb: Vec<u8> = values.iter().flat_map(|&v| scale.color(v)).collect();
    rgb_uri(&rgb, height, width)
}

/// A PNG of `height x width` RGB pixels (row-major, 3 bytes each) as a `data:` URI.
pub fn rgb_uri(rgb: &[u8], height: usize, width: usize) -> String {
    assert_eq!(rgb.len(), 3 * height * width, "rgb_uri: pixels vs size");
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, width as u32, height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        // Writing to memory an image of the size given cannot fail.
        let mut w = enc.write_header().expect("PNG header to memory");
        w.write_image_data(rgb).expect("PNG data to memory");
        w.finish().expect("PNG end to memory");
    }
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    )
}

/// An `<img>` of `values` (`height x width`) with CSS class `class` and a tooltip,
/// drawn at least [`TILE_PX`] pixels on its longer side, each value a square.
pub fn tile(
    class: &str,
    values: &[f32],
    height: usize,
    width: usize,
    scale: Scale,
    title: &str,
) -> String {
    img(
        class,
        &png_uri(values, height, width, scale),
        height,
        width,
        title,
    )
}

/// An `<img>` of a `data:` URI of a `height x width` picture (see [`tile`]).
pub fn img(class: &str, uri: &str, height: usize, width: usize, title: &str) -> String {
    let zoom = TILE_PX.div_ceil(height.max(width).max(1)).max(1);
    format!(
        "<img class=\"{class}\" src=\"{uri}\" width=\"{}\" height=\"{}\" alt=\"{t}\" title=\"{t}\">",
        width * zoom,
        height * zoom,
        t = esc(title)
    )
}

/// An input image (one row of the network's input, `image` in CHW order) as it is
/// fed to the network: grey from its least to its largest value, or in colour for
/// three channels (each channel spanning its own range).
pub fn input_uri(row: &[f32], image: Image) -> String {
    let area = image.area();
    if image.channels == 3 {
        let scales: Vec<Scale> = row
            .chunks(area)
            .map(|c| Scale::span(c.iter().copied()))
            .collect();
        let rgb: Vec<u8> = (0..area)
            .flat_map(|p| {
                (0..3)
                    .map(|c| match scales[c] {
                        // Grey maps the largest to black; a colour channel is lit by it.
                        s @ Scale::Grey { .. } => 255 - s.color(row[c * area + p])[0],
                        Scale::Diverging { .. } => 0,
                    })
                    .collect::<Vec<u8>>()
            })
            .collect();
        rgb_uri(&rgb, image.height, image.width)
    } else {
        let first = &row[..area];
        png_uri(
            first,
            image.height,
            image.width,
            Scale::span(first.iter().copied()),
        )
    }
}

/// A colour bar for `scale` with its ends and middle labelled (an SVG, 260 px wide).
pub fn legend(scale: Scale, label: &str) -> String {
    let (stops, ticks) = match scale {
        Scale::Diverging { max } => (
            vec![(0.0, NEGATIVE), (0.5, [255; 3]), (1.0, POSITIVE)],
            [
                format!("−{}", num(max)),
                "0".into(),
                format!("+{}", num(max)),
            ],
        ),
        Scale::Grey { lo, hi } => (
            vec![(0.0, [255; 3]), (1.0, [0; 3])],
            [num(lo), num((lo + hi) / 2.0), num(hi)],
        ),
    };
    let id = match scale {
        Scale::Diverging { .. } => "scale-diverging",
        Scale::Grey { .. } => "scale-grey",
    };
    let mut s = format!("<svg class=\"scale\" width=\"260\" height=\"46\" viewBox=\"0 0 260 46\" role=\"img\" aria-label=\"{l}\"><defs><linearGradient id=\"{id}\">", l = esc(label));
    for (at, [r, g, b]) in stops {
        s.push_str(&format!(
            "<stop offset=\"{at}\" stop-color=\"rgb({r},{g},{b})\"/>"
        ));
    }
    s.push_str(&format!("</linearGradient></defs><text x=\"130\" y=\"11\" font-size=\"11\" text-anchor=\"middle\" fill=\"#333\">{}</text><rect x=\"20\" y=\"16\" width=\"220\" height=\"12\" fill=\"url(#{id})\" stroke=\"#888\" stroke-width=\"0.5\"/>", esc(label)));
    for (x, t) in [20, 130, 240].iter().zip(ticks) {
        s.push_str(&format!(
            "<text x=\"{x}\" y=\"41\" font-size=\"11\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
            esc(&t)
        ));
    }
    s.push_str("</svg>");
    s
}

/// The image shape of rows whose features are named `pixel_<row>_<col>` (as the IDX
/// loader and the embedded digits name them), when they cover a `height x width` grid
/// exactly, in row-major order: one grey channel. `None` for any other names.
pub fn pixel_grid(names: &[String]) -> Option<Image> {
    let cells: Vec<(usize, usize)> = names
        .iter()
        .map(|n| {
            let (r, c) = n.strip_prefix("pixel_")?.split_once('_')?;
            Some((r.parse().ok()?, c.parse().ok()?))
        })
        .collect::<Option<_>>()?;
    let width = cells.iter().map(|c| c.1).max()? + 1;
    let height = cells.len() / width;
    let in_order = cells
        .iter()
        .enumerate()
        .all(|(i, &(r, c))| r == i / width && c == i % width);
    (in_order && height * width == cells.len() && height > 1).then_some(Image {
        channels: 1,
        height,
        width,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_names_give_the_grid_and_others_none() {
        let names = |h: usize, w: usize| -> Vec<String> {
            (0..h * w)
                .map(|i| format!("pixel_{}_{}", i / w, i % w))
                .collect()
        };
        let img = |h, w| Image {
            channels: 1,
            height: h,
            width: w,
        };
        assert_eq!(pixel_grid(&names(8, 8)), Some(img(8, 8)));
        assert_eq!(pixel_grid(&names(28, 28)), Some(img(28, 28)));
        assert_eq!(pixel_grid(&names(3, 5)), Some(img(3, 5)));
        // A pixel missing, out of order, or another feature: not an image.
        let mut gap = names(8, 8);
        gap.remove(10);
        assert_eq!(pixel_grid(&gap), None);
        let mut swapped = names(8, 8);
        swapped.swap(3, 4);
        assert_eq!(pixel_grid(&swapped), None);
        let mut other = names(8, 8);
        other[0] = "age".into();
        assert_eq!(pixel_grid(&other), None);
        assert_eq!(pixel_grid(&["MedInc".into(), "HouseAge".into()]), None);
        assert_eq!(pixel_grid(&[]), None);
    }

    #[test]
    fn scales_colour_their_ends_and_middle() {
        let d = Scale::fit([-2.0, 1.0].into_iter());
        assert_eq!(d, Scale::Diverging { max: 2.0 });
        assert_eq!(d.color(0.0), [255, 255, 255]);
        assert_eq!(d.color(-2.0), NEGATIVE);
        assert_eq!(d.color(5.0), POSITIVE);
        assert_eq!(d.color(1.0), [217, 140, 149]);
        let g = Scale::fit([0.5, 4.0].into_iter());
        assert_eq!(g, Scale::Grey { lo: 0.0, hi: 4.0 });
        assert_eq!(g.color(0.0), [255; 3]);
        assert_eq!(g.color(4.0), [0; 3]);
        assert_eq!(g.color(2.0), [128; 3]);
        assert_eq!(
            Scale::span([-1.0, 3.0].into_iter()),
            Scale::Grey { lo: -1.0, hi: 3.0 }
        );
    }

    #[test]
    fn png_uri_decodes_to_the_pixels() {
        let uri = png_uri(
            &[0.0, 1.0, 2.0, 4.0],
            2,
            2,
            Scale::Grey { lo: 0.0, hi: 4.0 },
        );
        let b64 = uri.strip_prefix("data:image/png;base64,").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let mut dec = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; dec.output_buffer_size().unwrap()];
        let info = dec.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (2, 2));
        assert_eq!(
            &buf[..12],
            &[255, 255, 255, 191, 191, 191, 128, 128, 128, 0, 0, 0]
        );
    }
}
