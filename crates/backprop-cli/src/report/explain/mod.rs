//! The `explain` pages rendered from the numbers `compute` found: what each command
//! prints, and the files it writes (SVG charts, an HTML page, a JSON file of every
//! number drawn).

pub mod descent;
pub mod landscape;
pub mod lr;

/// A rendered `explain` page.
pub struct Rendered {
    /// What the command prints on standard output.
    pub text: String,
    /// The files of the output folder: name and contents.
    pub files: Vec<(&'static str, String)>,
}
