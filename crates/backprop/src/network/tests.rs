//! Every kernel against the reference path: a network computed through its loops (the
//! kernels where `dispatch` chooses them) against the same network computed
//! layer by layer with each layer's own `forward` and `backward`. A kernel that keeps
//! the reference's sums gives the same bits; one that reorders a sum agrees to
//! rounding, and the test checks that it was taken. Shapes at each kernel's edges
//! (rows not a multiple of its block, every activation it claims, widths at and past
//! its limits) and shapes where it must not be chosen.

use super::*;
use crate::dispatch::takes_narrow_forward;
use crate::kernels::{narrow, patterns};
use crate::layer::{Backward, Forward};
use crate::test_util::{assert_close, grid as data};

/// The output and gradients (from `start`, overwriting or accumulating) of the
/// reference path: layer by layer, each layer's own forward and backward.
fn reference(
    net: &Network,
    x: &[f32],
    batch: usize,
    d_out: &[f32],
    start: &[f32],
    accumulate: bool,
) -> (Vec<f32>, Vec<f32>) {
    let mut acts = vec![x.to_vec()];
    let mut saved = vec![];
    for (i, l) in net.layers().iter().enumerate() {
        let mut out = vec![f32::NAN; batch * l.outputs()];
        let mut s = vec![f32::NAN; batch * l.saved_width()];
        let params = net.layer_params(i);
        l.forward(Forward {
            params,
            x: &acts[i],
            batch,
            out: &mut out,
            saved: &mut s,
            work: &mut vec![0.0; batch * l.work_width()],
            mode: crate::layer::Mode::Infer,
        });
        acts.push(out);
        saved.push(s);
    }
    let mut grads = start.to_vec();
    let mut g = d_out.to_vec();
    for (i, l) in net.layers().iter().enumerate().rev() {
        let mut dx = vec![f32::NAN; batch * l.inputs()];
        l.backward(Backward {
            params: net.layer_params(i),
            x: &acts[i],
            batch,
            out: &acts[i + 1],
            saved: &saved[i],
            d_out: &mut g,
            grads: &mut grads[net.layer_range(i)],
            dx: (i > 0).then_some(&mut dx[..]),
            accumulate,
            work: &mut vec![0.0; batch * l.work_width()],
        });
        g = dx;
    }
    (acts.pop().expect("an output"), grads)
}

/// The output and gradients through the network's loops, with their kernels.
fn fast(
    net: &Network,
    x: &[f32],
    batch: usize,
    d_out: &[f32],
    start: &[f32],
    accumulate: bool,
) -> (Vec<f32>, Vec<f32>, Trace) {
    let mut trace = Trace::default();
    net.forward_rows(x, batch, &mut trace);
    let out = trace.output().as_slice().to_vec();
    let mut grads = start.to_vec();
    net.backward_rows(x, batch, &mut trace, d_out, &mut grads, accumulate);
    (out, grads, trace)
}

/// A gradient buffer to start from: NaN where it is to be overwritten (so that
/// anything not written shows), values to add to when accumulating.
fn start_gradient(n: usize, accumulate: bool) -> Vec<f32> {
    if accumulate {
        data(n, 4)
    } else {
        vec![f32::NAN; n]
    }
}

/// A network of `Dense` layers of the widths `sizes` with the activations `acts`
/// (one per layer), its parameters spread over [-1, 1).
fn network(sizes: &[usize], acts: &[Activation], seed: usize) -> Network {
    let layers: Vec<Dense> = sizes
        .windows(2)
        .zip(acts)
        .map(|(w, &activation)| Dense {
            inputs: w[0],
            outputs: w[1],
            activation,
        })
        .collect();
    let n = Network::param_count(&layers).unwrap();
    Network::from_params(layers, data(n, seed)).unwrap()
}

/// Compares the kernels' results with the reference's for `batch` rows, overwriting and
/// accumulating: the output bit for bit, and each layer's gradient bit for bit unless
/// `rounded(i)` (a kernel that reorders sums computes it), then to rounding. Returns
/// whether any rounded gradient differed in its bits from the reference's.
fn compare(
    net: &Network,
    x: &[f32],
    batch: usize,
    rounded: impl Fn(usize) -> bool,
    what: &str,
) -> bool {
    let d_out = data(batch * net.outputs(), 3);
    let mut differs = false;
    for accumulate in [false, true] {
        let start = start_gradient(net.num_params(), accumulate);
        let (want_out, want) = reference(net, x, batch, &d_out, &start, accumulate);
        let (got_out, got, _) = fast(net, x, batch, &d_out, &start, accumulate);
        let what = format!("{what} batch {batch} accumulate {accumulate}");
        if (0..net.layers().len()).any(&rounded) {
            assert_close(&got_out, &want_out, &format!("{what}: output"));
        } else {
            assert_eq!(got_out, want_out, "{what}: output");
        }
        for i in 0..net.layers().len() {
            let r = net.layer_range(i);
            let (g, w) = (&got[r.clone()], &want[r]);
            if rounded(i) {
                assert_close(g, w, &format!("{what}: layer {i}"));
                differs |= g != w;
            } else {
                assert_eq!(g, w, "{what}: layer {i}");
            }
        }
    }
    differs
}

/// The fused `head` passes (forward and backward), bit for bit, for batches with and
/// without a remainder after groups of four rows; each of the head's widths kept in
/// registers (16 to 64) and one that is not; identity and sigmoid heads.
#[test]
fn fused_head_matches_layer_by_layer() {
    use Activation::{Elu, Identity, LeakyRelu, Relu, Sigmoid, Tanh};
    for (sizes, acts) in [
        (vec![8, 64, 64, 1], vec![Relu, Relu, Identity]),
        (vec![5, 9, 1], vec![Tanh, Sigmoid]),
        (vec![3, 16, 7, 1], vec![Elu, Elu, Identity]),
        (vec![4, 1], vec![Relu, Identity]),
        (vec![6, 32, 1], vec![LeakyRelu, Identity]),
        (vec![20, 48, 1], vec![Sigmoid, Sigmoid]),
    ] {
        let net = network(&sizes, &acts, 1);
        let stack = net.stack();
        let head_at = sizes.len().checked_sub(3);
        for i in 0..acts.len() {
            assert_eq!(
                stack.fused_head(i).is_some(),
                Some(i) == head_at,
                "{sizes:?} layer {i}"
            );
        }
        for batch in [1, 3, 4, 13, 64, 150] {
            let x = data(batch * sizes[0], 2);
            // Layer 0's weight gradient through its transpose where it is narrow.
            let rounded = |i: usize| i == 0 && narrow::takes_gradient(sizes[0], sizes[1], batch);
            compare(&net, &x, batch, rounded, &format!("{sizes:?}"));
        }
    }
}

/// Pairs that must not fuse: a lower layer keeping `z` (GELU) or with softmax, a head
/// with two outputs or keeping `z`, a layer of another kind between.
#[test]
fn head_is_not_chosen_where_it_does_not_apply() {
    use Activation::{Gelu, Identity, Relu, Softmax};
    for (sizes, acts) in [
        (vec![4, 8, 1], vec![Gelu, Identity]),
        (vec![4, 8, 1], vec![Softmax, Identity]),
        (vec![4, 8, 2], vec![Relu, Identity]),
        (vec![4, 8, 1], vec![Relu, Gelu]),
    ] {
        let net = network(&sizes, &acts, 1);
        assert!(net.stack().fused_head(0).is_none(), "{sizes:?} {acts:?}");
        for batch in [1, 7] {
            let x = data(batch * sizes[0], 2);
            let rounded = |i: usize| i == 0 && narrow::takes_gradient(sizes[0], sizes[1], batch);
            compare(&net, &x, batch, rounded, &format!("{sizes:?} {acts:?}"));
        }
    }
}

/// From `patterns::MIN_ROWS` rows, a ReLU layer below a one-output head passes its
/// gradient down through the `patterns` table: the layers below it agree with the
/// reference to rounding (and the table was taken: the bits differ); every other
/// gradient is the same bits. One row fewer, the product is used: all bits agree.
#[test]
fn relu_patterns_below_a_head_match_layer_by_layer() {
    use Activation::{Gelu, Identity, Relu, Sigmoid, Tanh};
    for (sizes, acts) in [
        (vec![8, 64, 64, 1], vec![Relu, Relu, Identity]),
        (vec![5, 32, 12, 1], vec![Relu, Relu, Sigmoid]),
        (vec![3, 40, 32, 8, 1], vec![Relu, Relu, Relu, Identity]),
        // Other layers below the ReLU layer, one whose derivative takes `z`.
        (vec![6, 32, 16, 1], vec![Tanh, Relu, Identity]),
        (vec![6, 64, 16, 1], vec![Gelu, Relu, Identity]),
        // The ReLU layer is the first: no gradient goes below it.
        (vec![32, 16, 1], vec![Relu, Identity]),
    ] {
        let net = network(&sizes, &acts, 5);
        let relu = sizes.len() - 3;
        assert!(patterns::fits(sizes[relu + 1], sizes[relu]), "{sizes:?}");
        for batch in [
            patterns::MIN_ROWS - 1,
            patterns::MIN_ROWS,
            patterns::MIN_ROWS + 45,
        ] {
            let x = data(batch * sizes[0], 6);
            let table = batch >= patterns::MIN_ROWS;
            let narrow = |i: usize| i == 0 && narrow::takes_gradient(sizes[0], sizes[1], batch);
            let rounded = |i: usize| narrow(i) || (table && i < relu);
            let differs = compare(&net, &x, batch, rounded, &format!("{sizes:?}"));
            assert_eq!(
                differs,
                table && relu > 0,
                "{sizes:?} batch {batch}: table taken"
            );
        }
    }
}

/// A batch whose input has columns that are zero in every row: the first layer leaves
/// them out of its products (the `columns` kernel), for a layer that keeps its
/// pre-activation (GELU), one that does not, and one fused with a one-output head;
/// with too few zero columns, or too few inputs, it is not chosen.
#[test]
fn zero_input_columns_are_left_out_with_the_same_results() {
    use Activation::{Gelu, Identity, Relu};
    for (sizes, acts) in [
        (vec![48, 32, 3], vec![Gelu, Identity]),
        (vec![48, 32, 16, 4], vec![Relu, Relu, Identity]),
        (vec![48, 32, 1], vec![Relu, Identity]),
    ] {
        let net = network(&sizes, &acts, 1);
        let (batch, inputs) = (64, sizes[0]);
        for (zeros, chosen) in [(true, true), (false, false)] {
            let mut x = data(batch * inputs, 2);
            for (i, v) in x.iter_mut().enumerate() {
                let c = i % inputs;
                if zeros && (c % 4 != 1 || c > 40) || !zeros && c == 0 {
                    *v = 0.0;
                }
            }
            let rounded = |i: usize| chosen && i == 0;
            compare(
                &net,
                &x,
                batch,
                rounded,
                &format!("{sizes:?} zeros {zeros}"),
            );
            let (.., trace) = fast(
                &net,
                &x,
                batch,
                &data(batch * net.outputs(), 3),
                &vec![0.0; net.num_params()],
                false,
            );
            assert_eq!(
                trace.space.columns.in_use(),
                chosen,
                "{sizes:?} zeros {zeros}"
            );
        }
    }
}

/// The one-pass forward of narrow layers: the same bits as the reference for every
/// width it takes, row counts with every remainder after groups of four, and each
/// element-wise activation; layers it does not take (too many inputs, an unsupported
/// width, softmax, GELU, one row) go to the reference. Its backward (the weight
/// gradient through the transpose, below 16 inputs) agrees to rounding.
#[test]
fn narrow_layers_match_the_reference() {
    for (inputs, outputs) in [
        (8, 64),
        (3, 16),
        (16, 48),
        (1, 32),
        (15, 64),
        (17, 64),
        (8, 40),
        (8, 80),
    ] {
        for act in Activation::ALL {
            let net = network(&[inputs, outputs], &[act], 1);
            for batch in [1, 2, 5, 6, 7, 8, 33] {
                let dense = Dense {
                    inputs,
                    outputs,
                    activation: act,
                };
                let takes = inputs <= 16
                    && outputs % 16 == 0
                    && outputs <= 64
                    && batch >= 2
                    && !matches!(act, Activation::Softmax | Activation::Gelu);
                assert_eq!(
                    takes_narrow_forward(dense, batch),
                    takes && fma_for_tests(),
                    "{inputs}x{outputs} {act} batch {batch}"
                );
                let x = data(batch * inputs, 2);
                let rounded = |_| narrow::takes_gradient(inputs, outputs, batch);
                compare(
                    &net,
                    &x,
                    batch,
                    rounded,
                    &format!("{inputs}x{outputs} {act}"),
                );
            }
        }
    }
    assert!(narrow::takes_gradient(15, 16, 2) && !narrow::takes_gradient(16, 64, 2));
    assert!(!narrow::takes_gradient(8, 8, 64) && !narrow::takes_gradient(8, 64, 1));
}

/// Whether this CPU has FMA, which the narrow forward kernel needs.
fn fma_for_tests() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A layer of another kind, `y = 2x`, between `Dense` layers: no kernel spans it, and
/// the network's results are the reference's.
#[test]
fn layers_of_other_kinds_take_the_reference_path() {
    #[derive(Clone, Debug)]
    struct Double(usize);
    impl Layer for Double {
        fn kind(&self) -> &'static str {
            "double"
        }
        fn inputs(&self) -> usize {
            self.0
        }
        fn outputs(&self) -> usize {
            self.0
        }
        fn num_params(&self) -> usize {
            0
        }
        fn forward(&self, p: Forward<'_>) {
            for (o, &x) in p.out.iter_mut().zip(p.x) {
                *o = 2.0 * x;
            }
        }
        fn backward(&self, p: Backward<'_>) {
            if let Some(dx) = p.dx {
                for (d, &g) in dx.iter_mut().zip(p.d_out.iter()) {
                    *d = 2.0 * g;
                }
            }
        }
        fn boxed_clone(&self) -> Box<dyn Layer> {
            Box::new(self.clone())
        }
    }
    let relu = |inputs, outputs| {
        Box::new(Dense {
            inputs,
            outputs,
            activation: Activation::Relu,
        }) as Box<dyn Layer>
    };
    let layers: Vec<Box<dyn Layer>> = vec![relu(8, 64), Box::new(Double(64)), relu(64, 1)];
    let n = 8 * 64 + 64 + 64 + 1;
    let net = Network::from_layers(layers, data(n, 1)).unwrap();
    let stack = net.stack();
    assert!(stack.fused_head(0).is_none() && stack.fused_head(1).is_none());
    for batch in [1, 5, 300] {
        let x = data(batch * 8, 2);
        let rounded = |i: usize| i == 0 && narrow::takes_gradient(8, 64, batch);
        compare(&net, &x, batch, rounded, "dense-double-dense");
    }
}
