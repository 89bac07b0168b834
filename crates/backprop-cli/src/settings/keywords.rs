//! The settings of `backprop train` as keyword arguments of the Python estimators
//! (`python/`): every knob of [`Options`] (the flag and TOML key names, `-` written `_`)
//! except those that name files or the data, which `fit(X, y)` and `save(dir)` replace.
//! The list and the defaults come from the type, so the Python signature cannot drift
//! from the command line (the package's tests compare them).

use anyhow::{anyhow, bail, Result};
use backprop::data::prep::TargetTransform;
use backprop::{Activation, Init, OptimizerKind};
use serde_json::{Map, Value};

use super::{Lr, Options, Scale, ScheduleKind};

/// Settings of `backprop train` that are not keyword arguments, and why.
pub const NOT_KEYWORDS: [(&str, &str); 14] = [
    ("data", "fit(X, y) is given the data"),
    ("example", "fit(X, y) is given the data"),
    (
        "test",
        "hold test rows out yourself and call score(X_test, y_test)",
    ),
    ("delimiter", "fit(X, y) reads no CSV file"),
    ("target", "y is the target"),
    ("task", "MLPRegressor regresses, MLPClassifier classifies"),
    (
        "features",
        "select columns before fit (e.g. with a ColumnTransformer)",
    ),
    (
        "ignore",
        "select columns before fit (e.g. with a ColumnTransformer)",
    ),
    (
        "test-fraction",
        "fit keeps no test rows: hold them out yourself and call score",
    ),
    ("out", "save(dir) writes the run folder"),
    ("metrics-json", "save(dir) writes metrics.json"),
    (
        "checkpoint-every",
        "fit writes no checkpoints (pickle the estimator)",
    ),
    (
        "dollars-per-unit",
        "only for the command line's printed summary",
    ),
    (
        "no-baseline",
        "fit trains the network without hidden layers only for keep='best'",
    ),
];

/// The keyword `quiet` becomes in Python (scikit-learn's name; 0 = quiet).
pub const QUIET: (&str, &str) = ("quiet", "verbose= (scikit-learn's name) instead");

impl Options {
    /// The layer of the defaults that hold whatever the data: what training with no
    /// flag uses. Knobs whose default depends on the data or on other knobs (batch
    /// size, weight decay, loss, momentum, threads) stay unset.
    pub fn defaults() -> Options {
        Options {
            scale: Some(Scale::Select),
            target_transform: Some(TargetTransform::default()),
            valid_fraction: Some(0.1),
            test_fraction: Some(0.2),
            hidden: Some(vec![256, 256, 128]),
            activation: Some(Activation::Relu),
            optimizer: Some(OptimizerKind::Adamw),
            lr: Some(Lr::Rate(0.02)),
            epochs: Some(60),
            schedule: Some(ScheduleKind::OneCycle),
            patience: Some(0),
            init: Some(Init::default()),
            seed: Some(42),
            checkpoint_every: Some(1),
            ..Options::default()
        }
    }
}

/// Every keyword (`batch_size`) with its default as JSON (`null` where the default
/// depends on the data), sorted by name.
pub fn keywords() -> Vec<(String, Value)> {
    let defaults = match serde_json::to_value(Options::defaults()) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    all_keys()
        .into_iter()
        .filter(|k| !is_excluded(k))
        .map(|k| {
            let v = defaults.get(&k).map_or(Value::Null, as_typed);
            (k.replace('-', "_"), v)
        })
        .collect()
}

/// A single-precision setting (`lr`) as typed: `0.02`, not the `0.019999999552965164`
/// its widening to JSON's double gives.
fn as_typed(v: &Value) -> Value {
    match v.as_f64() {
        Some(x) if !v.is_i64() && !v.is_u64() && f64::from(x as f32) == x => {
            let typed: f64 = (x as f32).to_string().parse().unwrap_or(x);
            serde_json::json!(typed)
        }
        _ => v.clone(),
    }
}

/// Every key of [`Options`], sorted.
fn all_keys() -> Vec<String> {
    // Every knob set, so that serde writes each one (switches are left out when false).
    let all = Options {
        no_baseline: true,
        quiet: true,
        ..Options::default()
    };
    match serde_json::to_value(all) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

fn is_excluded(key: &str) -> bool {
    key == QUIET.0 || NOT_KEYWORDS.iter().any(|(k, _)| *k == key)
}

/// The layer of settings the Python keywords give: `params` maps keyword names to
/// values (JSON, as for a TOML file). A keyword left at its default is unset, as when
/// the flag is not given (so the default network keeps its data-dependent weight decay).
pub fn options_from_keywords(params: &Map<String, Value>) -> Result<Options> {
    let known = keywords();
    let mut layer = Map::new();
    for (name, value) in params {
        let Some((_, default)) = known.iter().find(|(k, _)| k == name) else {
            bail!(
                "unknown keyword `{name}`; the keywords are: {}",
                known
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        if value.is_null() || same(value, default) {
            continue;
        }
        layer.insert(name.replace('_', "-"), value.clone());
    }
    serde_json::from_value(Value::Object(layer.clone())).map_err(|e| {
        // Name the keyword at fault: the first that does not read on its own.
        let culprit = layer.iter().find_map(|(k, v)| {
            let one = Map::from_iter([(k.clone(), v.clone())]);
            serde_json::from_value::<Options>(Value::Object(one))
                .err()
                .map(|e| format!("{}={v}: {e}", k.replace('-', "_")))
        });
        anyhow!(
            "invalid keyword {}",
            culprit.unwrap_or_else(|| e.to_string())
        )
    })
}

/// The keywords a layer of settings sets (the inverse of [`options_from_keywords`]):
/// what `backprop.load` gives a run folder's estimator from its `settings.toml`, so that
/// `get_params()` and `clone` are the run's. Settings that are not keywords are left out.
pub fn keywords_from_options(o: &Options) -> Map<String, Value> {
    let known = keywords();
    let Ok(Value::Object(set)) = serde_json::to_value(o) else {
        return Map::new();
    };
    set.into_iter()
        .map(|(k, v)| (k.replace('-', "_"), v))
        .filter(|(k, v)| !v.is_null() && known.iter().any(|(name, _)| name == k))
        .collect()
}

/// Whether a keyword's value is its default (numbers compared as numbers: `60` and
/// `60.0`, and `0.02` as typed and as stored in single precision).
fn same(value: &Value, default: &Value) -> bool {
    match (value, default) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y || (x as f32) == (y as f32),
            _ => false,
        },
        _ => value == default,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Settings;
    use super::*;

    #[test]
    fn keywords_of_options_read_back_as_the_same_options() {
        let o = Options {
            hidden: Some(vec![32, 16]),
            lr: Some(Lr::Rate(0.01)),
            weight_decay: Some(0.3),
            epochs: Some(7),
            scale: Some(Scale::Standard),
            data: Some("x.csv".into()),
            quiet: true,
            ..Options::default()
        };
        let k = keywords_from_options(&o);
        assert_eq!(k["lr"], serde_json::json!(0.01));
        assert!(!k.contains_key("data") && !k.contains_key("quiet"));
        let back = options_from_keywords(&k).unwrap();
        assert_eq!(
            back,
            Options {
                data: None,
                quiet: false,
                ..o
            }
        );
    }

    #[test]
    fn every_excluded_setting_is_a_setting() {
        let keys = all_keys();
        for (k, _) in NOT_KEYWORDS.iter().chain([&QUIET]) {
            assert!(keys.iter().any(|x| x == k), "{k} is no setting");
        }
        assert_eq!(keywords().len() + NOT_KEYWORDS.len() + 1, keys.len());
    }

    #[test]
    fn the_defaults_are_those_training_uses_without_flags() {
        let plain = Settings::from_options(Options::default()).unwrap();
        let mut given = Settings::from_options(Options::defaults()).unwrap();
        // Naming the default network turns off the data-dependent decay and `--keep
        // best` (see `options_from_keywords`, which leaves defaults unset for that
        // reason).
        assert!(!given.decay_default && plain.decay_default);
        assert!(!given.keep_best && plain.keep_best);
        given.decay_default = true;
        given.keep_best = true;
        given.given = Options::default();
        assert_eq!(given, plain);
    }

    #[test]
    fn keywords_at_their_defaults_set_nothing() {
        let params: Map<String, Value> = keywords().into_iter().collect();
        assert_eq!(options_from_keywords(&params).unwrap(), Options::default());
        let mut p = Map::new();
        p.insert("hidden".into(), serde_json::json!([8, 4]));
        p.insert("lr".into(), serde_json::json!("auto"));
        p.insert("batch_size".into(), serde_json::json!(32));
        let o = options_from_keywords(&p).unwrap();
        assert_eq!(o.hidden, Some(vec![8, 4]));
        assert_eq!(o.lr, Some(Lr::Auto));
        p.insert("target".into(), serde_json::json!("y"));
        assert!(options_from_keywords(&p).is_err());
    }
}
