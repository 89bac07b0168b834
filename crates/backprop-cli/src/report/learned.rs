//! The sections of `report.html` for image data: what a convolutional network learned
//! (the first convolution's filters, and the feature maps of a few test images at
//! every convolution and pooling layer) and the test images the network misclassified.
//! The feature maps are the layers' outputs of one forward pass ([`Trace::activations`]),
//! so they are what the network computed, not a re-computation.

use backprop::data::prep::Target;
use backprop::layer::{AvgPool2d, Conv2d, Image, LayerSpec, MaxPool2d};
use backprop::metrics::argmax_rows;
use backprop::Trace;

use super::images::{img, input_uri, legend, tile, Scale};
use super::run_report::RunReport;
use super::svg::esc;

/// Filters of the first convolution shown at most.
pub const MAX_FILTERS: usize = 64;
/// Input channels of each filter shown at most (one tile each).
pub const MAX_FILTER_INPUTS: usize = 4;
/// Test images whose feature maps are shown.
pub const MAP_IMAGES: usize = 3;
/// Channels of a layer's output shown at most for each image.
pub const MAX_MAP_CHANNELS: usize = 16;
/// Misclassified test images shown at most.
pub const MAX_MISSES: usize = 24;

/// The image shape of one input row: the first layer's input image when it takes
/// images, otherwise the data's ([`RunReport::image`]); `None` when neither has as many
/// values as the network has inputs.
pub fn input_image(r: &RunReport) -> Option<Image> {
    let from_net = match r.network.layers().first()?.spec() {
        Some(LayerSpec::Conv2d(c)) => Some(c.input),
        Some(LayerSpec::MaxPool2d(MaxPool2d(p)) | LayerSpec::AvgPool2d(AvgPool2d(p))) => {
            Some(p.input)
        }
        Some(LayerSpec::Flatten(f)) => Some(f.input),
        Some(LayerSpec::RandomShift(s)) => Some(s.image),
        _ => None,
    };
    from_net
        .or(r.image)
        .filter(|i| i.len() == r.network.inputs() && i.area() > 0)
}

/// The output image of a convolution or pooling layer.
fn output_image(spec: LayerSpec) -> Option<Image> {
    match spec {
        LayerSpec::Conv2d(c) => Some(c.output()),
        LayerSpec::MaxPool2d(MaxPool2d(p)) | LayerSpec::AvgPool2d(AvgPool2d(p)) => Some(p.output()),
        _ => None,
    }
}

/// The first convolution: its index and configuration.
fn first_conv(r: &RunReport) -> Option<(usize, Conv2d)> {
    r.network
        .layers()
        .iter()
        .enumerate()
        .find_map(|(i, l)| match l.spec() {
            Some(LayerSpec::Conv2d(c)) => Some((i, c)),
            _ => None,
        })
}

/// The filters and feature maps, when the network has a convolution; empty otherwise.
pub(super) fn conv_section(r: &RunReport) -> String {
    let Some((i, conv)) = first_conv(r) else {
        return String::new();
    };
    let mut s =
        String::from("<h2 id=\"convolutions\">What the convolutional layers learned</h2>\n");
    s.push_str(&filters(r, i, conv));
    s.push_str(&feature_maps(r));
    s
}

/// The first convolution's filters after training and at initialisation, one tile
/// per filter and input channel, on one diverging scale.
fn filters(r: &RunReport, i: usize, conv: Conv2d) -> String {
    let [kh, kw] = conv.kernel;
    let (k, cin) = (kh * kw, conv.input.channels);
    let n = conv.out_channels * cin * k;
    let trained = &r.network.layer_params(i)[..n];
    let initial = &r.initial[r.network.layer_range(i)][..n];
    let max = trained
        .iter()
        .chain(initial)
        .filter(|v| v.is_finite())
        .fold(f32::MIN_POSITIVE, |m, v| m.max(v.abs()));
    let scale = Scale::Diverging { max };
    let (outs, ins) = (
        conv.out_channels.min(MAX_FILTERS),
        cin.min(MAX_FILTER_INPUTS),
    );
    let row = |w: &[f32], class: &str| {
        let mut s = String::from("<div class=\"tiles\">");
        for o in 0..outs {
            s.push_str("<span class=\"filter-group\">");
            for c in 0..ins {
                let at = (o * cin + c) * k;
                let title = format!("filter {}, input channel {}", o + 1, c + 1);
                s.push_str(&tile(class, &w[at..at + k], kh, kw, scale, &title));
            }
            s.push_str("</span>");
        }
        s.push_str("</div>");
        s
    };
    let name = LayerSpec::Conv2d(conv).describe();
    let channels = if cin > 1 {
        format!(" A filter sees all {cin} input channels: its tiles stand side by side, one per channel{}.", if ins < cin { format!(" (the first {ins} shown)") } else { String::new() })
    } else {
        String::new()
    };
    let cap = if outs < conv.out_channels {
        format!(
            " The first {outs} of its {} filters are shown.",
            conv.out_channels
        )
    } else {
        String::new()
    };
    format!(
        "<h3>Filters of the first convolution</h3><p>Layer {}, {}, slides {} filters of {kh}x{kw} weights over the image; each tile below is one filter, a square per weight. Red weights add the pixel under them to the filter's response and blue ones subtract it, so a filter responds most where the image looks like its red part: edges, strokes and corners of a given direction.{channels}{cap} Both rows share one colour scale, so what training changed in the random initial filters shows.</p>\n<figure class=\"images\"><div class=\"maprow\"><div class=\"mapname\">after training</div>{}</div><div class=\"maprow\"><div class=\"mapname\">at initialisation</div>{}</div><figcaption>Weights of each filter ({}).</figcaption></figure>{}\n",
        i + 1,
        esc(&name),
        conv.out_channels,
        row(trained, "filter"),
        row(initial, "filter-init"),
        scale.describe(),
        legend(scale, "filter weight")
    )
}

/// The test rows whose feature maps are shown: the first row of each of the first
/// [`MAP_IMAGES`] classes met (classification), or the first rows.
fn sample_rows(r: &RunReport) -> Vec<usize> {
    let rows = r.test_x.rows().min(r.test_y.rows());
    if !matches!(r.target, Target::Classification { .. }) {
        return (0..rows.min(MAP_IMAGES)).collect();
    }
    let actual = argmax_rows(r.test_y);
    let mut seen = Vec::new();
    let mut picked = Vec::new();
    for (row, &a) in actual.iter().enumerate().take(rows) {
        if !seen.contains(&a) {
            seen.push(a);
            picked.push(row);
            if picked.len() == MAP_IMAGES {
                break;
            }
        }
    }
    picked
}

/// The feature maps of a few test images at every convolution and pooling layer.
fn feature_maps(r: &RunReport) -> String {
    let Some(image) = input_image(r) else {
        return String::new();
    };
    let rows = sample_rows(r);
    let mut s = String::from("<h3>Feature maps of test images</h3>");
    if rows.is_empty() {
        s.push_str(
            "<p>No test rows (<code>--test-fraction 0</code>): no feature maps to show.</p>\n",
        );
        return s;
    }
    let x = r.test_x.select_rows(&rows);
    let mut trace = Trace::default();
    r.network.forward_train(&x, &mut trace);
    s.push_str(&format!("<p>What each convolution and pooling layer outputs for {} test images the network never trained on: one tile per output channel (the first {MAX_MAP_CHANNELS} channels of a layer at most), each showing where in the image that channel's filter found its pattern. Deeper layers have fewer, coarser pixels and respond to larger patterns. The input is drawn as the network sees it (after the input scaling), from its least value (white) to its largest (black); a layer's channels share one scale per image, from white at 0 to black at the layer's largest output (blue to red about 0 if some outputs are negative), given beside the layer's name.</p><div class=\"maps\">", rows.len()));
    for (n, &row) in rows.iter().enumerate() {
        s.push_str(&map_figure(r, &trace, n, row, image));
    }
    s.push_str("</div>\n");
    s
}

/// One test image (`row`, the `n`-th of the traced batch) and its maps at each layer.
fn map_figure(r: &RunReport, trace: &Trace, n: usize, row: usize, image: Image) -> String {
    let input = img(
        "map-input",
        &input_uri(r.test_x.row(row), image),
        image.height,
        image.width,
        "input image",
    );
    let mut s = format!("<figure class=\"images fmap\"><div class=\"maprow\"><div class=\"mapname\">input {image}</div><div class=\"tiles\">{input}</div></div>");
    for (l, layer) in r.network.layers().iter().enumerate() {
        let Some((spec, out)) = layer.spec().and_then(|sp| Some((sp, output_image(sp)?))) else {
            continue;
        };
        let a = trace.activations(l).row(n);
        let scale = Scale::fit(a.iter().copied());
        let shown = out.channels.min(MAX_MAP_CHANNELS);
        let area = out.area();
        s.push_str(&format!(
            "<div class=\"maprow\"><div class=\"mapname\">layer {}: {}<br><span class=\"note\">{}{}</span></div><div class=\"tiles\">",
            l + 1,
            esc(&spec.describe()),
            if shown < out.channels { format!("first {shown} of {} channels; ", out.channels) } else { String::new() },
            scale.describe()
        ));
        for c in 0..shown {
            let title = format!("layer {}, channel {}", l + 1, c + 1);
            s.push_str(&tile(
                "map",
                &a[c * area..(c + 1) * area],
                out.height,
                out.width,
                scale,
                &title,
            ));
        }
        s.push_str("</div></div>");
    }
    format!(
        "{s}<figcaption>Test row {}{}.</figcaption></figure>\n",
        row + 1,
        label_of(r, row)
    )
}

/// `: class 7, predicted 7 (p 0.99)` for a classification's test row; empty otherwise.
fn label_of(r: &RunReport, row: usize) -> String {
    let Target::Classification { classes, .. } = r.target else {
        return String::new();
    };
    let (a, p) = (argmax(r.test_y.row(row)), argmax(r.test_pred.row(row)));
    let name = |c: usize| esc(classes.get(c).map_or("?", String::as_str));
    format!(
        ": class {}, predicted {} (p {:.2})",
        name(a),
        name(p),
        r.test_pred.row(row)[p]
    )
}

/// The index of the largest value.
fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv {
                (i, x)
            } else {
                (bi, bv)
            }
        })
        .0
}

/// The misclassified test images with their predicted and true classes, when the rows
/// are images and the task is classification; empty otherwise.
pub(super) fn misclassified_section(r: &RunReport, classes: &[String]) -> String {
    let Some(image) = input_image(r) else {
        return String::new();
    };
    // Under mpirun the predictions are every rank's, rank 0's first; the images are
    // this process's.
    let rows = r.test_x.rows().min(r.test_pred.rows()).min(r.test_y.rows());
    let wrong: Vec<(usize, usize, usize)> = (0..rows)
        .filter_map(|i| {
            let (a, p) = (argmax(r.test_y.row(i)), argmax(r.test_pred.row(i)));
            (a != p).then_some((i, a, p))
        })
        .collect();
    let name = |c: usize| esc(classes.get(c).map_or("?", String::as_str));
    let shown = wrong.len().min(MAX_MISSES);
    let mut s = format!(
        "<h2 id=\"misclassified\">Misclassified test images</h2><p data-wrong=\"{}\" data-rows=\"{rows}\">The network got {} of the {rows} test images{} wrong{}. Each is drawn as the network sees it (after the input scaling, white to black from its least to its largest value), with the class the network predicted, its probability, and the true class with the probability the network gave it.</p>\n<div class=\"misses\">",
        wrong.len(),
        wrong.len(),
        if rows < r.test_pred.rows() { " this process holds" } else { "" },
        if shown < wrong.len() { format!("; the first {shown} are shown") } else { String::new() },
    );
    for &(i, a, p) in &wrong[..shown] {
        let probs = r.test_pred.row(i);
        let pic = img(
            "miss-image",
            &input_uri(r.test_x.row(i), image),
            image.height,
            image.width,
            &format!("test row {}", i + 1),
        );
        s.push_str(&format!(
            "<figure class=\"miss\">{pic}<figcaption>predicted <b>{}</b> (p {:.2})<br>true {} (p {:.2})<br><span class=\"note\">row {}</span></figcaption></figure>",
            name(p),
            probs[p],
            name(a),
            probs[a],
            i + 1
        ));
    }
    s.push_str("</div>\n");
    s
}
