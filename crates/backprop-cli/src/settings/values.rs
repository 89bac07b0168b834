//! Typed values of settings that are not the library's own: hidden widths, batch size,
//! learning rate and schedule. Each parses from the text a flag takes (for clap's
//! `value_parser`) and from a TOML value (as a string, or as a number or list).

use backprop::data::prep::ScaleKind;
use clap::ValueEnum;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A flag's value as it is typed on the command line (`adamw`, `log`, `valid`), for
/// messages.
pub fn flag_value(v: &impl ValueEnum) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_owned())
}

/// Parses `--hidden`: comma-separated positive widths, or empty (or `none`) for none.
pub fn parse_widths(s: &str) -> Result<Vec<usize>, String> {
    let t = s.trim();
    if t.is_empty() || t == "none" {
        return Ok(Vec::new());
    }
    t.split(',')
        .map(|w| match w.trim().parse::<usize>() {
            Ok(0) => Err("a layer of 0 units; use --hidden \"\" for no hidden layer".to_string()),
            Ok(n) => Ok(n),
            Err(_) => Err(
                "expected comma-separated layer widths such as 64,64 (or \"\" for none)"
                    .to_string(),
            ),
        })
        .collect()
}

/// `hidden = "64,64"` or `hidden = [64, 64]` in a `--config` file.
pub(super) fn widths_de<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<usize>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        List(Vec<usize>),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::List(v)) => match v.contains(&0) {
            true => Err(serde::de::Error::custom("hidden: a layer of 0 units")),
            false => Ok(Some(v)),
        },
        Some(Raw::Text(t)) => parse_widths(&t)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("hidden `{t}`: {e}"))),
    }
}

/// `--batch-size`: rows per update, or the whole training set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Batch {
    /// This many rows per update (1 = online gradient descent).
    Rows(usize),
    /// Every training row in each update.
    Full,
}

impl std::str::FromStr for Batch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "full" => Ok(Batch::Full),
            t => match t.parse::<usize>() {
                Ok(0) | Err(_) => Err("expected a positive number of rows, or `full`".to_string()),
                Ok(n) => Ok(Batch::Rows(n)),
            },
        }
    }
}

impl std::fmt::Display for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Batch::Rows(n) => write!(f, "{n}"),
            Batch::Full => f.write_str("full"),
        }
    }
}

impl Serialize for Batch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Batch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumberOrText::deserialize(d)? {
            NumberOrText::Number(n) => format!("{n}").parse(),
            NumberOrText::Text(t) => t.parse(),
        }
        .map_err(|e| serde::de::Error::custom(format!("batch-size: {e}")))
    }
}

/// A single-precision setting as it was typed: `0.01`, not the `0.009999999776482582`
/// its widening to `f64` gives (TOML and JSON write doubles).
pub fn typed(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// Writes an optional single-precision setting as typed (see [`typed`]).
pub(super) fn typed_ser<S: Serializer>(v: &Option<f32>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_some(&typed(*v)),
        None => s.serialize_none(),
    }
}

/// `--lr`: a rate, or `auto` for the range test's suggestion.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Lr {
    /// Find the rate with a learning-rate range test.
    Auto,
    /// This rate.
    Rate(f32),
}

impl std::str::FromStr for Lr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(Lr::Auto),
            t => t
                .parse()
                .map(Lr::Rate)
                .map_err(|_| format!("expected a number such as 0.001, or `auto`, got `{s}`")),
        }
    }
}

impl Serialize for Lr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Lr::Auto => s.serialize_str("auto"),
            Lr::Rate(v) => s.serialize_f64(typed(*v)),
        }
    }
}

impl<'de> Deserialize<'de> for Lr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumberOrText::deserialize(d)? {
            NumberOrText::Number(v) => Ok(Lr::Rate(v as f32)),
            NumberOrText::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(f64),
    Text(String),
}

/// `--scale`: how numeric features are scaled, fitted on the training rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scale {
    /// Train once with `quantile` and once with `standard` scaling and keep the network
    /// that validates better (tables only; one `quantile` run without validation rows,
    /// for images, or above 10,000 training rows).
    #[default]
    Select,
    /// Through the training quantiles onto a normal distribution (tames outliers).
    Quantile,
    /// `(x - mean) / std` (keeps linear effects linear).
    Standard,
    /// `quantile` for heavy-tailed columns (excess kurtosis above 10), else `standard`.
    Auto,
    /// Into `[0, 1]`.
    Minmax,
    /// Unchanged.
    None,
}

impl Scale {
    /// The scaling the preprocessing fits: `select`'s first candidate is `quantile`.
    pub fn kind(self) -> ScaleKind {
        match self {
            Scale::Select | Scale::Quantile => ScaleKind::Quantile,
            Scale::Standard => ScaleKind::Standard,
            Scale::Auto => ScaleKind::Auto,
            Scale::Minmax => ScaleKind::Minmax,
            Scale::None => ScaleKind::None,
        }
    }
}

/// `--class-weight`: how much each class's rows weigh in the cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClassWeight {
    /// Each training row weighs `rows / (classes x rows of its class)` (scikit-learn's
    /// "balanced"): every class weighs the same in total, a rare one as a common one.
    Balanced,
}

/// `--keep`: which model the run folder keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Keep {
    /// The network, or the network without hidden layers (linear or logistic
    /// regression, trained beside it) when that one validates better.
    Best,
    /// The network, whatever the one without hidden layers scores.
    Network,
}

/// Learning-rate schedules, as `--schedule` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// The same rate throughout.
    Constant,
    /// Halve the rate every quarter of the epochs.
    Step,
    /// Multiply the rate by 0.95 every epoch.
    Exponential,
    /// Cosine annealing to zero over the epochs.
    Cosine,
    /// One-cycle: warm up over 30% of the steps, then anneal.
    OneCycle,
    /// Divide the rate by 10 when the validation loss stalls for 5 epochs.
    Plateau,
}

/// The example data sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Example {
    /// MNIST handwritten digits: 60,000 training and 10,000 test images of 28x28
    /// pixels, read from data/mnist in the repository.
    Mnist,
    /// scikit-learn's 8x8 handwritten digits (1,797 images), embedded in the binary.
    Digits,
    /// MNIST with a convolutional network: conv 1->32 3x3 pad 1, ReLU, maxpool 2,
    /// conv 32->64 3x3 pad 1, ReLU, maxpool 2, flatten, dense 3136->128, ReLU,
    /// dense 128->10.
    MnistCnn,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_from_flags_and_refuse_nonsense() {
        assert_eq!(parse_widths("64, 32"), Ok(vec![64, 32]));
        assert_eq!(parse_widths(""), Ok(vec![]));
        assert!(parse_widths("4,0").unwrap_err().contains("0 units"));
        assert!(parse_widths("64,x").unwrap_err().contains("such as 64,64"));
        assert_eq!("full".parse(), Ok(Batch::Full));
        assert_eq!("32".parse(), Ok(Batch::Rows(32)));
        assert!("0".parse::<Batch>().is_err());
        assert_eq!("auto".parse(), Ok(Lr::Auto));
        assert_eq!("0.5".parse(), Ok(Lr::Rate(0.5)));
    }
}
