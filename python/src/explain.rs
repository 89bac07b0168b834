//! The numbers behind `backprop explain descent|landscape|lr`, as dicts of numpy arrays
//! (computed by `backprop_cli::compute`, the code the command line draws from).

use std::path::PathBuf;

use backprop_cli::compute::descent::{self, NamedPath};
use backprop_cli::compute::landscape::{self, SplitArg};
use backprop_cli::run::fit::lr_range_table;
use numpy::{PyArray1, PyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::{on_pool, py_err, settings, table};

/// A list of equal rows as a 2-D array.
fn matrix<'py, T: numpy::Element + Copy>(
    py: Python<'py>,
    rows: &[Vec<T>],
) -> PyResult<Bound<'py, PyArray2<T>>> {
    PyArray2::from_vec2(py, rows).map_err(|e| PyValueError::new_err(e.to_string()))
}

fn vector<'py, T: numpy::Element + Copy>(py: Python<'py>, v: &[T]) -> Bound<'py, PyArray1<T>> {
    PyArray1::from_slice(py, v)
}

/// The learning-rate range test of `explain lr` on the training rows `fit` would use.
#[pyfunction]
#[pyo3(signature = (params_json, columns, names, y, target, classify, lr_min, lr_max, steps))]
#[allow(clippy::too_many_arguments)]
fn explain_lr<'py>(
    py: Python<'py>,
    params_json: &str,
    columns: Vec<Bound<'py, PyAny>>,
    mut names: Vec<String>,
    y: Bound<'py, PyAny>,
    target: String,
    classify: bool,
    lr_min: f32,
    lr_max: f32,
    steps: usize,
) -> PyResult<Bound<'py, PyDict>> {
    if !(lr_min > 0.0 && lr_max > lr_min && lr_max.is_finite()) || steps < 10 {
        return Err(PyValueError::new_err(
            "invalid range: need 0 < lr_min < lr_max and steps of at least 10",
        ));
    }
    let s = settings(params_json, classify, false)?;
    let mut columns = columns;
    columns.push(y);
    names.push(target.clone());
    let t = table("X", &columns, names)?;
    let r = on_pool(py, &s, || {
        lr_range_table(&s, t, &target, (lr_min, lr_max, steps))
    })?;
    let d = PyDict::new(py);
    d.set_item("lrs", vector(py, &r.lrs))?;
    d.set_item("losses", vector(py, &r.losses))?;
    d.set_item("smoothed", vector(py, &r.smoothed))?;
    d.set_item("min_index", r.min_index)?;
    d.set_item("steepest_index", r.steepest_index)?;
    d.set_item("suggestion", r.suggestion)?;
    Ok(d)
}

fn paths<'py>(py: Python<'py>, kind: &str, ps: &[NamedPath]) -> PyResult<Vec<Bound<'py, PyDict>>> {
    ps.iter()
        .map(|p| {
            let d = PyDict::new(py);
            d.set_item("kind", kind)?;
            d.set_item("name", &p.name)?;
            d.set_item("lr", p.lr)?;
            d.set_item("batch", p.batch.to_string())?;
            d.set_item("params", matrix(py, &p.path.params)?)?;
            d.set_item("costs", vector(py, &p.path.costs))?;
            d.set_item("diverged", p.path.diverged)?;
            Ok(d)
        })
        .collect()
}

/// Gradient descent on a brute-forced cost surface (`explain descent`).
#[pyfunction]
#[pyo3(signature = (feature, grid, steps, seed))]
fn explain_descent<'py>(
    py: Python<'py>,
    feature: String,
    grid: usize,
    steps: usize,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let p = descent::Params {
        feature,
        grid,
        steps,
        seed,
    };
    p.validate().map_err(py_err)?;
    let n = py.allow_threads(|| descent::compute(&p)).map_err(py_err)?;
    let d = PyDict::new(py);
    d.set_item("feature", &n.feature)?;
    d.set_item("rows", n.rows)?;
    d.set_item("feature_mean", n.feature_mean)?;
    d.set_item("w_ls", n.w_ls)?;
    d.set_item("b_ls", n.b_ls)?;
    d.set_item("ls_cost", n.ls_cost)?;
    d.set_item("ws", vector(py, &n.ws))?;
    d.set_item("bs", vector(py, &n.bs))?;
    d.set_item("grid", matrix(py, &n.grid)?)?;
    d.set_item("grid_min", n.grid_min)?;
    d.set_item("grid_1d", vector(py, &n.grid_1d))?;
    d.set_item("grid_1d_min", n.grid_1d_min)?;
    d.set_item("limit", n.limit)?;
    let mut all = paths(py, "rate", &n.rate_paths)?;
    all.extend(paths(py, "rate_1d", &n.rate_paths_1d)?);
    all.extend(paths(py, "batch", &n.batch_paths)?);
    d.set_item("paths", all)?;
    d.set_item("batch_lr", n.batch_lr)?;
    d.set_item("batch_steps", n.batch_steps)?;
    Ok(d)
}

/// The cost around a saved model's weights (`explain landscape`).
#[pyfunction]
#[pyo3(signature = (model, data, delimiter, split, rows, points, grid, span, seed))]
#[allow(clippy::too_many_arguments)]
fn explain_landscape<'py>(
    py: Python<'py>,
    model: PathBuf,
    data: Option<PathBuf>,
    delimiter: Option<String>,
    split: &str,
    rows: usize,
    points: usize,
    grid: usize,
    span: f64,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let split = match split {
        "train" => SplitArg::Train,
        "valid" => SplitArg::Valid,
        "test" => SplitArg::Test,
        other => {
            return Err(PyValueError::new_err(format!(
                "split `{other}`: use train, valid or test"
            )))
        }
    };
    let p = landscape::Params {
        model,
        data,
        delimiter,
        split,
        rows,
        points,
        grid,
        span,
        seed,
    };
    p.validate().map_err(py_err)?;
    let n = py
        .allow_threads(|| landscape::compute(&p))
        .map_err(py_err)?;
    let d = PyDict::new(py);
    d.set_item("params", n.params)?;
    d.set_item("rows", n.rows)?;
    d.set_item("split_rows", n.split_rows)?;
    d.set_item("loss", n.loss.to_string())?;
    d.set_item("alphas", vector(py, &n.alphas))?;
    d.set_item("curves", matrix(py, &n.curves)?)?;
    d.set_item("center", n.center)?;
    d.set_item("axis", vector(py, &n.axis))?;
    d.set_item("plane", matrix(py, &n.plane)?)?;
    if let Some(path) = &n.path {
        let pd = PyDict::new(py);
        let coords: Vec<Vec<f64>> = path.coords.iter().map(|c| c.to_vec()).collect();
        pd.set_item("explained", path.explained.to_vec())?;
        pd.set_item("coords", matrix(py, &coords)?)?;
        pd.set_item("epochs", path.epochs.clone())?;
        pd.set_item("xs", vector(py, &path.xs))?;
        pd.set_item("ys", vector(py, &path.ys))?;
        pd.set_item("cost", matrix(py, &path.cost)?)?;
        d.set_item("path", pd)?;
    } else {
        d.set_item("path", py.None())?;
    }
    Ok(d)
}

/// Adds the functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(explain_lr, m)?)?;
    m.add_function(wrap_pyfunction!(explain_descent, m)?)?;
    m.add_function(wrap_pyfunction!(explain_landscape, m)?)?;
    Ok(())
}
