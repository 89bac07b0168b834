//! `backprop._core`: the Rust half of the Python package. It binds the settings layer
//! of `backprop train` (`backprop_cli::settings`), the in-memory run
//! (`backprop_cli::run::fit`) and the numbers of `explain` (`backprop_cli::compute`); the
//! scikit-learn estimators around it are Python (`backprop/`).
//!
//! Data comes in as named columns: numbers (1-D float64 or float32 arrays, NaN for a
//! missing cell) or text (lists of str, "" for a missing cell), the same typed columns a
//! CSV file gives the command line, so the preprocessing is the command line's.

mod explain;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use backprop::data::csv::{Column, Table};
use backprop::data::prep::{Target, Task};
use backprop::{Callback, Control, Network, TrainState};
use backprop_cli::run::fit::{fit_table, predict_table, FitRun};
use backprop_cli::settings::keywords::{
    keywords as all_keywords, keywords_from_options, options_from_keywords,
};
use backprop_cli::settings::keywords::{NOT_KEYWORDS, QUIET};
use backprop_cli::settings::Settings;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::{PyFileNotFoundError, PyTypeError, PyValueError};
use pyo3::prelude::*;

/// An error of the library or the CLI's layers as a Python exception: a missing file is
/// `FileNotFoundError`, anything else `ValueError` (bad data or settings).
pub(crate) fn py_err(e: anyhow::Error) -> PyErr {
    let text = backprop_cli::errors::chain(&e);
    let missing = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    });
    if missing {
        PyFileNotFoundError::new_err(text)
    } else {
        PyValueError::new_err(text)
    }
}

/// One column from Python: a float64 or float32 array (NaN = missing) or a list of str
/// ("" = missing).
fn column(obj: &Bound<'_, PyAny>) -> PyResult<Column> {
    if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, f64>>() {
        return Ok(Column::Numeric(a.as_array().iter().copied().collect()));
    }
    if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, f32>>() {
        return Ok(Column::Numeric(
            a.as_array().iter().map(|&v| f64::from(v)).collect(),
        ));
    }
    if let Ok(v) = obj.extract::<Vec<String>>() {
        return Ok(Column::Text(v));
    }
    Err(PyTypeError::new_err(format!(
        "a column must be a 1-D float64/float32 array or a list of str, not {}",
        obj.get_type().name()?
    )))
}

/// A table of named columns of equal length.
pub(crate) fn table(
    source: &str,
    columns: &[Bound<'_, PyAny>],
    names: Vec<String>,
) -> PyResult<Table> {
    if columns.len() != names.len() {
        return Err(PyValueError::new_err(format!(
            "{} columns but {} names",
            columns.len(),
            names.len()
        )));
    }
    let columns: Vec<Column> = columns.iter().map(column).collect::<PyResult<_>>()?;
    let rows = columns.first().map_or(0, Column::len);
    if let Some(c) = columns.iter().position(|c| c.len() != rows) {
        return Err(PyValueError::new_err(format!(
            "column `{}` has {} rows, the first {rows}",
            names[c],
            columns[c].len()
        )));
    }
    Ok(Table {
        source: PathBuf::from(source),
        headers: names,
        columns,
        // Row numbers as a CSV file with a header would have them.
        lines: (2..rows as u64 + 2).collect(),
    })
}

/// The settings the keywords give (JSON text of a dict), for one task.
pub(crate) fn settings(params_json: &str, classify: bool, verbose: bool) -> PyResult<Settings> {
    let params: serde_json::Map<String, serde_json::Value> = serde_json::from_str(params_json)
        .map_err(|e| PyValueError::new_err(format!("parameters: {e}")))?;
    let mut o = options_from_keywords(&params).map_err(py_err)?;
    o.task = Some(if classify {
        Task::Classify
    } else {
        Task::Regress
    });
    o.quiet = !verbose;
    // The caller holds out its own test rows (see NOT_KEYWORDS).
    o.test_fraction = Some(0.0);
    Settings::from_options(o).map_err(py_err)
}

/// A pool of the settings' threads.
fn pool(s: &Settings) -> anyhow::Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(s.threads())
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the thread pool: {e}"))
}

/// Runs `f` on a pool of the settings' threads, without the GIL.
pub(crate) fn on_pool<T: Send>(
    py: Python<'_>,
    s: &Settings,
    f: impl FnOnce() -> anyhow::Result<T> + Send,
) -> PyResult<T> {
    py.allow_threads(|| pool(s)?.install(f)).map_err(py_err)
}

/// Ctrl-C as training sees it: `stop` is set once Python's signal handler has raised
/// (KeyboardInterrupt); `check` asks the calling thread to run the handlers now.
struct Signals {
    stop: AtomicBool,
    events: mpsc::Sender<Event>,
}

/// What the training thread tells the calling thread.
enum Event {
    /// Run the signal handlers, then answer.
    Check(mpsc::SyncSender<()>),
    /// Training has returned.
    Finished,
}

impl Signals {
    /// Has Ctrl-C been pressed? Waits until the calling thread has run Python's
    /// handlers, so an interrupt raised before this call is always seen by it, however
    /// fast the steps are.
    fn check(&self) -> bool {
        let (ack, answered) = mpsc::sync_channel(1);
        if self.events.send(Event::Check(ack)).is_ok() {
            let _ = answered.recv();
        }
        self.stopped()
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Trains `f` on a pool of the settings' threads without the GIL, while this (the
/// calling, normally the main) thread runs Python's signal handlers every 20 ms and
/// whenever `f` asks (at each epoch's end): Python runs its handlers only on the main
/// thread, and the pool's threads are not it. A handler's exception (KeyboardInterrupt)
/// sets `stop`, which `f`'s callback turns into a stop; it is returned beside `f`'s
/// result.
fn interruptible<T: Send>(
    py: Python<'_>,
    s: &Settings,
    f: impl FnOnce(&Signals) -> anyhow::Result<T> + Send,
) -> PyResult<(T, Option<PyErr>)> {
    let mut raised = None;
    let result = py.allow_threads(|| {
        let (events, received) = mpsc::channel();
        let signals = Signals {
            stop: AtomicBool::new(false),
            events,
        };
        let pool = pool(s)?;
        let mut result = None;
        std::thread::scope(|scope| {
            let (signals, result) = (&signals, &mut result);
            scope.spawn(move || {
                *result = Some(pool.install(|| f(signals)));
                let _ = signals.events.send(Event::Finished);
            });
            let mut poll = || {
                if raised.is_none() {
                    raised = Python::with_gil(|py| py.check_signals().err());
                    signals.stop.store(raised.is_some(), Ordering::SeqCst);
                }
            };
            loop {
                match received.recv_timeout(Duration::from_millis(20)) {
                    Ok(Event::Check(ack)) => {
                        poll();
                        let _ = ack.send(());
                    }
                    Ok(Event::Finished) => break,
                    Err(mpsc::RecvTimeoutError::Timeout) => poll(),
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        });
        result.unwrap_or_else(|| {
            anyhow::bail!("training stopped without a result (a panic in the trainer)")
        })
    });
    Ok((result.map_err(py_err)?, raised))
}

/// Progress and Ctrl-C during `fit`: stops after the step during which Ctrl-C was
/// seen, or at the end of the epoch during which it was pressed, and prints a line per
/// epoch when verbose (`model 2: ...` for the models `scale='select'` and
/// `keep='best'` train after the first).
struct Hook<'a> {
    verbose: bool,
    epochs: usize,
    signals: &'a Signals,
    /// Trainings finished so far.
    trainings: usize,
}

impl Callback for Hook<'_> {
    fn on_step_end(&mut self, _: usize, _: usize, _: usize, _: f32) -> Control {
        if self.signals.stopped() {
            Control::Stop
        } else {
            Control::Continue
        }
    }

    fn on_epoch_end(&mut self, _: &Network, state: &TrainState) -> backprop::Result<Control> {
        if let (true, Some(r)) = (self.verbose, state.history.epochs.last()) {
            let valid = r
                .valid_loss
                .map_or(String::new(), |v| format!(", validation loss = {v:.6}"));
            let model = match self.trainings {
                0 => String::new(),
                n => format!("model {}: ", n + 1),
            };
            print_line(format!(
                "{model}Epoch {}/{}, loss = {:.6}{valid}, lr = {:.3e}, {:.2}s",
                r.epoch, self.epochs, r.train_loss, r.lr, r.seconds
            ));
        }
        Ok(if self.signals.check() {
            Control::Stop
        } else {
            Control::Continue
        })
    }

    fn on_train_end(&mut self, _: &mut Network, _: &TrainState) {
        self.trainings += 1;
    }
}

/// Prints `line` with Python's `print` (so that capture and redirection work).
fn print_line(line: String) {
    Python::with_gil(|py| {
        let printed = py
            .import("builtins")
            .and_then(|b| b.getattr("print")?.call1((line,)).map(|_| ()));
        if let Err(e) = printed {
            e.print(py);
        }
    });
}

/// A trained model: predicts, saves its run folder, and says what it is.
#[pyclass(module = "backprop._core", frozen)]
struct Model {
    model: backprop::model::Model,
    run: Option<FitRun>,
}

#[pymethods]
impl Model {
    /// Outputs for the rows of the named columns: the target in its units (one column)
    /// or one probability a class, as `backprop predict` computes them.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        columns: Vec<Bound<'py, PyAny>>,
        names: Vec<String>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let t = table("X", &columns, names)?;
        let m = &self.model;
        let out = py.allow_threads(|| predict_table(m, &t)).map_err(py_err)?;
        let (rows, cols) = (out.rows(), out.cols());
        PyArray1::from_vec(py, out.into_vec()).reshape([rows, cols])
    }

    /// The class names, in the order of the probability columns (None for regression).
    fn classes(&self) -> Option<Vec<String>> {
        match &self.model.meta.preprocessor.target {
            Target::Classification { classes, .. } => Some(classes.clone()),
            Target::Regression { .. } => None,
        }
    }

    /// The target's name.
    fn target_name(&self) -> String {
        self.model.meta.preprocessor.target.name().to_string()
    }

    /// The input columns the model reads, by name, in order.
    fn feature_names(&self) -> Vec<String> {
        let prep = &self.model.meta.preprocessor;
        prep.features.iter().map(|f| f.name().to_string()).collect()
    }

    /// Weights and biases.
    fn num_params(&self) -> usize {
        self.model.network.num_params()
    }

    /// What training recorded (JSON of the library's `History`), if this model was
    /// trained here.
    fn history_json(&self) -> PyResult<Option<String>> {
        self.run
            .as_ref()
            .map(|r| serde_json::to_string(r.history()))
            .transpose()
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// Writes the run folder (`backprop train`'s files for a model trained here; the
    /// model files for one loaded).
    fn save(&self, py: Python<'_>, dir: PathBuf) -> PyResult<()> {
        py.allow_threads(|| match &self.run {
            Some(run) => run.write(&dir),
            None => self.model.save(&dir).map_err(anyhow::Error::from),
        })
        .map_err(py_err)
    }
}

/// Trains a model; returns it and whether Ctrl-C stopped training (the error to raise
/// once the caller has kept the model).
#[pyfunction]
#[pyo3(signature = (params_json, columns, names, y, target, classify, verbose, name))]
#[allow(clippy::too_many_arguments)]
fn fit(
    py: Python<'_>,
    params_json: &str,
    columns: Vec<Bound<'_, PyAny>>,
    mut names: Vec<String>,
    y: Bound<'_, PyAny>,
    target: String,
    classify: bool,
    verbose: bool,
    name: &str,
) -> PyResult<(Model, Option<PyObject>)> {
    let s = settings(params_json, classify, verbose)?;
    let mut columns = columns;
    columns.push(y);
    names.push(target.clone());
    let t = table("X", &columns, names)?;
    let epochs = s.train.epochs;
    let (run, raised) = interruptible(py, &s, |signals| {
        let mut hook = Hook {
            verbose,
            epochs,
            signals,
            trainings: 0,
        };
        fit_table(&s, t, &target, name, &mut hook)
    })?;
    if verbose {
        for line in run.choice_lines() {
            print_line(line);
        }
    }
    let model = run.model();
    Ok((
        Model {
            model,
            run: Some(run),
        },
        raised.map(|e| e.into_value(py).into_any()),
    ))
}

/// Reads a run folder (or any folder with `model.json` and `model.safetensors`).
#[pyfunction]
fn load(py: Python<'_>, dir: PathBuf) -> PyResult<Model> {
    let model = py
        .allow_threads(|| backprop::model::Model::load(&dir))
        .map_err(|e| py_err(e.into()))?;
    Ok(Model { model, run: None })
}

/// The keywords a run folder's `settings.toml` sets, as JSON text of an object (None
/// when the folder has no `settings.toml`, as folders written before it had).
#[pyfunction]
fn given_keywords(dir: PathBuf) -> PyResult<Option<String>> {
    let file = dir.join("settings.toml");
    if !file.is_file() {
        return Ok(None);
    }
    let o = backprop_cli::settings::Options::from_toml(&file).map_err(py_err)?;
    Ok(Some(
        serde_json::Value::Object(keywords_from_options(&o)).to_string(),
    ))
}

/// Every keyword of the estimators with its default, as JSON text of a list of
/// `[name, default]` pairs.
#[pyfunction]
fn keywords() -> String {
    serde_json::Value::Array(
        all_keywords()
            .into_iter()
            .map(|(k, v)| serde_json::json!([k, v]))
            .collect(),
    )
    .to_string()
}

/// The settings of `backprop train` that are not keywords, with the reason.
#[pyfunction]
fn not_keywords() -> Vec<(String, String)> {
    NOT_KEYWORDS
        .iter()
        .chain([&QUIET])
        .map(|(k, r)| (k.replace('-', "_"), r.to_string()))
        .collect()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(given_keywords, m)?)?;
    m.add_function(wrap_pyfunction!(keywords, m)?)?;
    m.add_function(wrap_pyfunction!(not_keywords, m)?)?;
    explain::register(m)?;
    Ok(())
}
