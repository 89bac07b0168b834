//! Weight initialisation: where gradient descent starts.

use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;

/// How a layer's weights (and biases) are drawn.
///
/// Draws are made layer by layer, the whole weight matrix (row-major, PyTorch's
/// `[out, in]` layout) before the bias, from the one seeded generator, so the same seed
/// gives the same network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// He for the ReLU family, Xavier for the others.
    #[default]
    Auto,
    /// The classic scheme: small random numbers near zero, `N(0, 0.01²)`; biases zero.
    Classic,
    /// Glorot & Bengio (2010): `U(-a, a)`, `a = √(6 / (fan_in + fan_out))`; biases zero.
    XavierUniform,
    /// Glorot & Bengio (2010): `N(0, 2 / (fan_in + fan_out))`; biases zero.
    XavierNormal,
    /// He et al. (2015): `U(-a, a)`, `a = √(6 / fan_in)`; biases zero.
    HeUniform,
    /// He et al. (2015): `N(0, 2 / fan_in)`; biases zero.
    HeNormal,
    /// PyTorch's `nn.Linear` default: weights and biases `U(-1/√fan_in, 1/√fan_in)`.
    Torch,
}

impl std::fmt::Display for Init {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Init {
    /// The name used on the command line (`--init`).
    pub fn name(self) -> &'static str {
        match self {
            Init::Auto => "auto",
            Init::Classic => "classic",
            Init::XavierUniform => "xavier-uniform",
            Init::XavierNormal => "xavier-normal",
            Init::HeUniform => "he-uniform",
            Init::HeNormal => "he-normal",
            Init::Torch => "torch",
        }
    }

    /// The concrete scheme `Auto` stands for with this activation.
    pub fn resolve(self, activation: Activation) -> Init {
        match self {
            Init::Auto if activation.is_rectifier() => Init::HeUniform,
            Init::Auto => Init::XavierUniform,
            other => other,
        }
    }

    /// Fills a `fan_out x fan_in` weight matrix and its bias.
    pub fn fill<R: Rng + ?Sized>(
        self,
        rng: &mut R,
        fan_in: usize,
        fan_out: usize,
        weight: &mut [f32],
        bias: &mut [f32],
    ) {
        let (fi, fo) = (fan_in.max(1) as f32, fan_out.max(1) as f32);
        bias.fill(0.0);
        match self {
            Init::Auto => unreachable!("Init::Auto is resolved before filling"),
            Init::Classic => normal(rng, 0.01, weight),
            Init::XavierUniform => uniform(rng, (6.0 / (fi + fo)).sqrt(), weight),
            Init::XavierNormal => normal(rng, (2.0 / (fi + fo)).sqrt(), weight),
            Init::HeUniform => uniform(rng, (6.0 / fi).sqrt(), weight),
            Init::HeNormal => normal(rng, (2.0 / fi).sqrt(), weight),
            Init::Torch => {
                let bound = 1.0 / fi.sqrt();
                uniform(rng, bound, weight);
                uniform(rng, bound, bias);
            }
        }
    }
}

fn uniform<R: Rng + ?Sized>(rng: &mut R, bound: f32, out: &mut [f32]) {
    let d = Uniform::new_inclusive(-bound, bound);
    for x in out {
        *x = d.sample(rng);
    }
}

fn normal<R: Rng + ?Sized>(rng: &mut R, std: f32, out: &mut [f32]) {
    // std is finite and positive by construction (fan counts are >= 1).
    let d = Normal::new(0.0, std).expect("finite positive standard deviation");
    for x in out {
        *x = d.sample(rng);
    }
}

#[cfg(all(test, feature = "clap"))]
mod tests {
    use super::*;

    /// The name shown in reports is the one `--init` takes.
    #[test]
    fn names_are_the_command_line_values() {
        use clap::ValueEnum;
        for init in Init::value_variants() {
            let value = init.to_possible_value().expect("no variant is skipped");
            assert_eq!(value.get_name(), init.name());
            assert_eq!(init.to_string(), init.name());
        }
    }
}
