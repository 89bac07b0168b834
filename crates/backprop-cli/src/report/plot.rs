//! The loss-curve picture of a run.

use std::path::Path;

use anyhow::{anyhow, Result};
use backprop::History;
use plotters::prelude::*;

/// Draws train (and validation) loss per epoch, log scale, as SVG.
pub fn loss_curve(history: &History, loss_name: &str, path: &Path) -> Result<()> {
    let train: Vec<(f64, f64)> = history
        .epochs
        .iter()
        .map(|e| (e.epoch as f64, e.train_loss.max(1e-12)))
        .collect();
    let valid: Vec<(f64, f64)> = history
        .epochs
        .iter()
        .filter_map(|e| e.valid_loss.map(|v| (e.epoch as f64, v.max(1e-12))))
        .collect();
    let all = train.iter().chain(&valid).map(|p| p.1);
    let (lo, hi) = all.fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return Ok(());
    }
    let n = history.epochs.len().max(2) as f64;
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    let e = |e: DrawingAreaErrorKind<_>| anyhow!("cannot draw {}: {e:?}", path.display());
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Cost per epoch ({loss_name}, standardised target)"),
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(1f64..n, (lo * 0.9..hi * 1.1).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(format!("{loss_name} (log scale)"))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(LineSeries::new(train, BLUE.stroke_width(2)))
        .map_err(e)?
        .label("train")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    if !valid.is_empty() {
        chart
            .draw_series(LineSeries::new(valid, RED.stroke_width(2)))
            .map_err(e)?
            .label("validation")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}
