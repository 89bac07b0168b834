//! Property tests: invariants that must hold for every input, not just chosen ones.

use backprop::activation::Activation;
use backprop::layer::Dense;
use backprop::loss::Loss;
use backprop::matrix::Matrix;
use backprop::network::{Network, NetworkConfig};
use backprop::optim::{Optimizer, Sgd};
use backprop::train::{BatchSize, Callback, Control, Dataset, TrainConfig, TrainState, Trainer};
use proptest::prelude::*;
use rand::SeedableRng;

/// A `rows x cols` batch of values from `values`.
fn batch(values: impl Strategy<Value = f32> + Clone) -> impl Strategy<Value = (Vec<f32>, usize)> {
    (1usize..6, 1usize..12).prop_flat_map(move |(rows, cols)| {
        (
            prop::collection::vec(values.clone(), rows * cols),
            Just(cols),
        )
    })
}

/// Logits anywhere in `[-1e4, 1e4]`, with a good share exactly at the extremes.
fn logit() -> impl Strategy<Value = f32> + Clone {
    prop_oneof![-1e4f32..1e4, Just(1e4f32), Just(-1e4f32), -10.0f32..10.0]
}

/// Target rows that are probability vectors (one-hot or soft), for cross-entropy.
fn probability_rows(raw: &[f32], cols: usize) -> Vec<f32> {
    let mut y: Vec<f32> = raw.iter().map(|v| v.abs()).collect();
    for row in y.chunks_exact_mut(cols) {
        let s: f32 = row.iter().sum();
        if s > 0.0 {
            row.iter_mut().for_each(|v| *v /= s);
        } else {
            row[0] = 1.0;
        }
    }
    y
}

proptest! {
    #[test]
    fn softmax_rows_sum_to_one_and_stay_finite((z, cols) in batch(logit())) {
        let mut a = vec![f32::NAN; z.len()];
        Activation::Softmax.forward(&z, &mut a, cols);
        for row in a.chunks_exact(cols) {
            prop_assert!(row.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)), "{row:?}");
            let sum: f64 = row.iter().map(|&v| v as f64).sum();
            // At most 11 roundings of values <= 1, plus the one of 1/sum.
            prop_assert!((sum - 1.0).abs() < 2e-6, "row sums to {sum}: {row:?}");
        }
        // Its backward stays finite too.
        let mut dz = vec![f32::NAN; z.len()];
        Activation::Softmax.backward(&z, &a, &vec![1.0; z.len()], &mut dz, cols);
        prop_assert!(dz.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn every_loss_is_non_negative_and_finite(
        (p, cols) in batch(-1e4f32..1e4),
        raw in prop::collection::vec(-1e4f32..1e4, 66),
    ) {
        let raw = &raw[..p.len()];
        for loss in [Loss::Mse, Loss::Mae, Loss::Huber, Loss::Bce, Loss::CrossEntropy] {
            let y: Vec<f32> = match loss {
                // Targets in the loss's domain.
                Loss::Bce => raw.iter().map(|v| (v / 1e4 + 1.0) / 2.0).collect(),
                Loss::CrossEntropy => probability_rows(raw, cols),
                _ => raw.to_vec(),
            };
            let value = loss.value(&p, &y, cols);
            prop_assert!(value.is_finite() && value >= 0.0, "{loss}: value {value}");
            let mut grad = vec![f32::NAN; p.len()];
            let from_gradient = loss.gradient(&p, &y, cols, &mut grad);
            prop_assert!(from_gradient.is_finite() && from_gradient >= 0.0, "{loss}: gradient() loss {from_gradient}");
            prop_assert!(grad.iter().all(|g| g.is_finite()), "{loss}: gradient {grad:?}");
            // A piece's share folded into the same pass: the gradient times the share,
            // bit for bit, and the same loss.
            let share = 0.3f32;
            let mut scaled = vec![f32::NAN; p.len()];
            let from_scaled = loss.gradient_scaled(&p, &y, cols, share, &mut scaled);
            let want: Vec<f32> = grad.iter().map(|g| g * share).collect();
            prop_assert_eq!(from_scaled, from_gradient, "{}: loss", loss);
            prop_assert_eq!(scaled, want, "{}: scaled gradient", loss);
        }
    }

    /// The naive `-y ln σ(z) - (1-y) ln(1-σ(z))` gives inf/NaN here; the stable form
    /// must not, and its gradient `(σ(z) - y)/n` must stay within `[-1/n, 1/n]`.
    #[test]
    fn bce_stays_finite_for_huge_logits((z, cols) in batch(logit()), hard in any::<bool>()) {
        let y: Vec<f32> = (0..z.len()).map(|i| if hard { (i % 2) as f32 } else { 0.3 }).collect();
        let value = Loss::Bce.value(&z, &y, cols);
        prop_assert!(value.is_finite() && value >= 0.0, "{value}");
        let mut grad = vec![f32::NAN; z.len()];
        let from_gradient = Loss::Bce.gradient(&z, &y, cols, &mut grad);
        prop_assert!(from_gradient.is_finite());
        let bound = 1.0 / z.len() as f32;
        prop_assert!(grad.iter().all(|g| g.is_finite() && g.abs() <= bound * (1.0 + 1e-6)), "{grad:?}");
        // A logit of +/-1e4 on the wrong side costs about 1e4 (relative to its share).
        if let Some(i) = z.iter().position(|&v| v == 1e4) {
            if y[i] == 0.0 {
                prop_assert!(value >= 1e4 / z.len() as f64 * 0.999);
            }
        }
    }

    /// Saving a network (serde) and loading it back gives bit-identical predictions.
    #[test]
    fn save_then_load_gives_bit_identical_predictions(seed in any::<u64>(), rows in 1usize..8) {
        let config = NetworkConfig { inputs: 3, hidden: vec![5, 4], outputs: 2, activation: Activation::Gelu, ..Default::default() };
        let net = config.init(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed)).unwrap();
        let loaded: Network = serde_json::from_str(&serde_json::to_string(&net).unwrap()).unwrap();
        let x = Matrix::from_vec(rows, 3, (0..rows * 3).map(|i| (i as f32 * 0.37 + seed as f32).sin()).collect()).unwrap();
        let bits = |m: Matrix| m.into_vec().into_iter().map(f32::to_bits).collect::<Vec<_>>();
        prop_assert_eq!(bits(net.predict(&x)), bits(loaded.predict(&x)));
    }
}

/// Records the parameters after every epoch.
#[derive(Default)]
struct Snapshots(Vec<Vec<f32>>);

impl Callback for Snapshots {
    fn on_epoch_end(&mut self, net: &Network, _state: &TrainState) -> backprop::Result<Control> {
        self.0.push(net.params().to_vec());
        Ok(Control::Continue)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Each epoch visits every sample exactly once, observed through the real trainer.
    ///
    /// Row `j` of the data is the unit vector `e_j`, the network is `p = w·x + b`
    /// (no hidden layer, zero weights) and the loss is MAE against targets far below any
    /// prediction. Then a step over a batch of `B` rows adds exactly `1/B` to the
    /// gradient of `w_j` for each row `j` it contains and `1` to the bias gradient,
    /// whatever the weights are. With plain SGD at rate 1, over an epoch `w_j` falls by
    /// `1/B` per visit in a full batch (or `1/r` in the short last batch of `r` rows)
    /// and `b` falls by the number of steps. A row skipped shows up as 0, a row
    /// visited twice as `2/B` (or `1/B + 1/r`), and too many steps in the bias.
    #[test]
    fn each_epoch_visits_every_sample_exactly_once(
        n in 1usize..40,
        batch_choice in prop_oneof![Just(None), (1usize..45).prop_map(Some)],
        shuffle in any::<bool>(),
        seed in any::<u64>(),
        epochs in 1usize..4,
    ) {
        let mut x = Matrix::zeros(n, n);
        for j in 0..n {
            x.row_mut(j)[j] = 1.0;
        }
        let data = Dataset::new(x, Matrix::from_vec(n, 1, vec![-1e6; n]).unwrap()).unwrap();
        let mut net = Network::zeros(vec![Dense { inputs: n, outputs: 1, activation: Activation::Identity }]);
        let batch_size = batch_choice.map_or(BatchSize::Full, BatchSize::Mini);
        let trainer = Trainer::new(TrainConfig {
            epochs,
            batch_size,
            shuffle,
            seed,
            loss: Loss::Mae,
            optimizer: Optimizer::Sgd(Sgd::default()),
            lr: 1.0,
            ..Default::default()
        })
        .unwrap();
        let mut snapshots = Snapshots::default();
        trainer.fit(&mut net, &data, None, &mut [&mut snapshots]).unwrap();
        prop_assert_eq!(snapshots.0.len(), epochs);

        let b = batch_size.rows(n);
        let steps = n.div_ceil(b);
        let last = n - b * (steps - 1);
        let mut before = vec![0.0f32; n + 1];
        for (e, after) in snapshots.0.iter().enumerate() {
            let drop = |k: usize| (before[k] - after[k]) as f64;
            prop_assert!((drop(n) - steps as f64).abs() < 1e-4, "epoch {}: bias moved by {} for {} steps", e + 1, drop(n), steps);
            let (mut in_full, mut in_last) = (0, 0);
            for j in 0..n {
                let d = drop(j);
                if (d - 1.0 / b as f64).abs() < 1e-5 {
                    in_full += 1;
                } else if (d - 1.0 / last as f64).abs() < 1e-5 {
                    in_last += 1;
                } else {
                    prop_assert!(false, "epoch {}: row {} moved its weight by {} (batch {}, last batch {})", e + 1, j, d, b, last);
                }
            }
            if last == b {
                prop_assert_eq!(in_full + in_last, n);
            } else {
                prop_assert_eq!((in_full, in_last), (n - last, last), "epoch {}", e + 1);
            }
            before.clone_from(after);
        }
    }
}
