//! The layer interface is open: a kind of layer defined here, outside the library, is
//! checked against finite differences and trains through `Trainer::fit` with no change
//! to the network, the trainer or the optimizers.

use backprop::gradcheck::check_gradient;
use backprop::layer::{Backward, Dense, Forward, Layer};
use backprop::{
    Activation, BatchSize, Dataset, Loss, Matrix, Network, OptimizerKind, Trace, TrainConfig,
    Trainer,
};

/// Per-feature scaling, `y_j = s_j x_j`: one parameter per feature.
#[derive(Clone, Debug)]
struct Scale {
    width: usize,
}

impl Layer for Scale {
    fn kind(&self) -> &'static str {
        "scale"
    }
    fn inputs(&self) -> usize {
        self.width
    }
    fn outputs(&self) -> usize {
        self.width
    }
    fn num_params(&self) -> usize {
        self.width
    }
    fn forward(&self, p: Forward<'_>) {
        for (out, x) in p
            .out
            .chunks_exact_mut(self.width)
            .zip(p.x.chunks_exact(self.width))
        {
            for ((o, &x), &s) in out.iter_mut().zip(x).zip(p.params) {
                *o = s * x;
            }
        }
    }
    fn backward(&self, p: Backward<'_>) {
        if !p.accumulate {
            p.grads.fill(0.0);
        }
        let rows = p
            .d_out
            .chunks_exact(self.width)
            .zip(p.x.chunks_exact(self.width));
        for (dy, x) in rows {
            // ds_j += dy_j x_j
            for ((g, &dy), &x) in p.grads.iter_mut().zip(dy).zip(x) {
                *g += dy * x;
            }
        }
        if let Some(dx) = p.dx {
            // dx_j = dy_j s_j
            for (dx, dy) in dx
                .chunks_exact_mut(self.width)
                .zip(p.d_out.chunks_exact(self.width))
            {
                for ((dx, &dy), &s) in dx.iter_mut().zip(dy).zip(p.params) {
                    *dx = dy * s;
                }
            }
        }
    }
    fn boxed_clone(&self) -> Box<dyn Layer> {
        Box::new(self.clone())
    }
}

/// Dense(3 -> 8, tanh), Scale(8), Dense(8 -> 1): the scaling layer in the middle, so
/// that it both receives a gradient and passes one down.
fn network(params: Vec<f32>) -> Network {
    let layers: Vec<Box<dyn Layer>> = vec![
        Box::new(Dense {
            inputs: 3,
            outputs: 8,
            activation: Activation::Tanh,
        }),
        Box::new(Scale { width: 8 }),
        Box::new(Dense {
            inputs: 8,
            outputs: 1,
            activation: Activation::Identity,
        }),
    ];
    Network::from_layers(layers, params).unwrap()
}

const PARAMS: usize = 3 * 8 + 8 + 8 + 8 + 1;

fn initial() -> Vec<f32> {
    let mut p: Vec<f32> = (0..PARAMS)
        .map(|i| ((i * 37 % 17) as f32 / 17.0 - 0.5) * 0.8)
        .collect();
    // The scales start at one.
    p[32..40].fill(1.0);
    p
}

/// `y = sin(x0) + x1 x2 / 2` on a grid of 64 rows.
fn data() -> Dataset {
    let rows: Vec<Vec<f32>> = (0..64)
        .map(|i| {
            (0..3)
                .map(|j| ((i * 7 + j * 5) % 13) as f32 / 6.5 - 1.0)
                .collect()
        })
        .collect();
    let y: Vec<f32> = rows
        .iter()
        .map(|r| r[0].sin() + r[1] * r[2] / 2.0)
        .collect();
    Dataset::new(
        Matrix::from_rows(&rows).unwrap(),
        Matrix::from_vec(64, 1, y).unwrap(),
    )
    .unwrap()
}

/// The network's gradient (its backward through `Scale` and the `Dense` layers) against
/// central differences of its mean squared error.
#[test]
fn a_layer_defined_outside_the_library_backpropagates_exactly() {
    let d = data();
    let net = network(initial());
    let mut trace = Trace::default();
    net.forward_train(&d.x, &mut trace);
    let out = trace.output().as_slice().to_vec();
    let mut d_out = vec![0.0; out.len()];
    Loss::Mse.gradient(&out, d.y.as_slice(), 1, &mut d_out);
    let mut grads = vec![f32::NAN; PARAMS];
    net.backward(&d.x, &mut trace, &d_out, &mut grads);
    let loss = |p: &[f64]| {
        let net = network(p.iter().map(|&v| v as f32).collect());
        let out = net.predict(&d.x);
        // The sum over the rows, not the mean: gradients of order one, whose relative
        // errors the checker sees.
        64.0 * Loss::Mse.value(out.as_slice(), d.y.as_slice(), 1)
    };
    let x: Vec<f64> = net.params().iter().map(|&v| v as f64).collect();
    let analytic: Vec<f64> = grads.iter().map(|&v| 64.0 * v as f64).collect();
    let check = check_gradient(&x, &analytic, 1e-3, loss);
    assert!(check.passes(5e-3), "{check:?}");
    // The scales' own gradients are among those checked, and not zero.
    assert!(
        grads[32..40].iter().all(|g| g.abs() > 1e-6),
        "{:?}",
        &grads[32..40]
    );
}

/// Trained by `Trainer::fit` (Adam, mini-batches), the loss falls by far and the
/// scales move; the model writer refuses the network with a clear error.
#[test]
fn a_layer_defined_outside_the_library_trains_through_fit() {
    let d = data();
    let mut net = network(initial());
    let trainer = Trainer::new(TrainConfig {
        epochs: 300,
        batch_size: BatchSize::Mini(16),
        loss: Loss::Mse,
        lr: 0.01,
        optimizer: OptimizerKind::Adam.build(0.0, 0.0),
        ..Default::default()
    })
    .unwrap();
    let history = trainer.fit(&mut net, &d, None, &mut []).unwrap();
    let (first, last) = (&history.epochs[0], history.epochs.last().unwrap());
    assert!(
        last.train_loss < first.train_loss / 20.0 && last.train_loss < 0.01,
        "train loss {} -> {}",
        first.train_loss,
        last.train_loss
    );
    let scales = &net.layer_params(1);
    assert!(scales.iter().any(|&s| (s - 1.0).abs() > 0.05), "{scales:?}");
    let err = backprop::model::weights_to_safetensors(&net)
        .unwrap_err()
        .to_string();
    assert!(err.contains("layer 1 is a scale layer"), "{err}");
}
