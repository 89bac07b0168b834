//! Classification results as `train` and `evaluate` print them.

use backprop::metrics::ClassificationMetrics;

/// Confusion matrices with more classes than this are left to metrics.json.
const MAX_CONFUSION_CLASSES: usize = 20;
/// Class names are cut to this many characters in tables.
const NAME_WIDTH: usize = 12;

fn short(name: &str) -> String {
    if name.chars().count() <= NAME_WIDTH {
        name.to_string()
    } else {
        let mut s: String = name.chars().take(NAME_WIDTH - 1).collect();
        s.push('…');
        s
    }
}

/// The per-class table and confusion matrix, under a headline with accuracy and
/// log-loss.
pub fn table(title: &str, m: &ClassificationMetrics) -> String {
    let mut s = format!(
        "{title}: accuracy {:.4} ({} of {} rows), log-loss {:.4}\n\n",
        m.accuracy,
        m.confusion
            .iter()
            .enumerate()
            .map(|(i, r)| r[i])
            .sum::<u64>(),
        m.rows,
        m.log_loss
    );
    s.push_str(&format!(
        "{:<14} {:>9} {:>9} {:>9} {:>9}\n",
        "class", "precision", "recall", "F1", "support"
    ));
    for c in &m.per_class {
        s.push_str(&format!(
            "{:<14} {:>9.4} {:>9.4} {:>9.4} {:>9}\n",
            short(&c.class),
            c.precision,
            c.recall,
            c.f1,
            c.support
        ));
    }
    for (name, a) in [
        ("macro avg", &m.macro_avg),
        ("weighted avg", &m.weighted_avg),
    ] {
        s.push_str(&format!(
            "{name:<14} {:>9.4} {:>9.4} {:>9.4} {:>9}\n",
            a.precision, a.recall, a.f1, m.rows
        ));
    }
    let k = m.per_class.len();
    if k > MAX_CONFUSION_CLASSES {
        s.push_str(&format!(
            "\n(confusion matrix of {k} classes: see metrics.json)\n"
        ));
        return s;
    }
    let width = m
        .confusion
        .iter()
        .flatten()
        .map(|v| v.to_string().len())
        .chain(m.per_class.iter().map(|c| short(&c.class).chars().count()))
        .max()
        .unwrap_or(1)
        .max(3);
    s.push_str("\nconfusion matrix (rows: actual class, columns: predicted class)\n");
    s.push_str(&format!("{:<14}", ""));
    for c in &m.per_class {
        s.push_str(&format!(" {:>width$}", short(&c.class)));
    }
    s.push('\n');
    for (c, row) in m.per_class.iter().zip(&m.confusion) {
        s.push_str(&format!("{:<14}", short(&c.class)));
        for v in row {
            s.push_str(&format!(" {v:>width$}"));
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_classes_averages_and_confusion() {
        let m = ClassificationMetrics::from_predictions(&[0, 0, 1, 2], &[0, 1, 1, 2], 3)
            .with_class_names(&["setosa", "versicolor", "a-very-long-class-name"]);
        let t = table("test set (species)", &m);
        assert!(
            t.starts_with("test set (species): accuracy 0.7500 (3 of 4 rows), log-loss 0.0000\n"),
            "{t}"
        );
        assert!(
            t.contains("setosa            1.0000    0.5000    0.6667         2\n"),
            "{t}"
        );
        assert!(t.contains("a-very-long…"), "{t}");
        assert!(t.contains("macro avg"), "{t}");
        assert!(
            t.contains("weighted avg      0.8750    0.7500    0.7500         4\n"),
            "{t}"
        );
        // Columns as wide as the longest class name (12 characters here).
        assert!(
            t.contains("\nsetosa                    1            1            0\n"),
            "{t}"
        );
    }
}
