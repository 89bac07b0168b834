//! The shape of the code, checked: no import cycle between the modules of either crate,
//! and in the CLI no layer importing one above it (see `LAYERS`), no file over
//! `MAX_FILE_LINES` and no function over `MAX_FN_LINES` lines outside tests unless a
//! reason is written at its top.
//!
//! The import graph is read from the source text: every path that starts with `crate::`,
//! `super::`, `self::` or the name of a module the file declares (`mod x;`), inside `use`
//! items and in code alike, is an edge from the file's module to the module that defines
//! the name (re-exports with `pub use` are followed, so `crate::Matrix` in the library
//! points at `matrix`, not at `lib.rs`, and a `mod.rs` that re-exports its children while
//! they use its trait is no cycle). `#[cfg(test)]` modules at the end of a file are
//! left out: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The CLI's layers, top first. A module may import modules of its own layer (the graph
/// stays acyclic) or of a layer below, never of one above.
const LAYERS: &[(&str, &[&str])] = &[
    // The binary's entry: parses the flags, dispatches, maps errors to exit codes.
    ("main", &["crate"]),
    // One thin module per sub-command: args -> settings -> run -> report.
    ("commands", &["commands"]),
    // clap types only; turns flags into a layer of settings.
    ("args", &["args"]),
    // Loads the data, trains or computes, writes the outputs.
    ("run", &["run"]),
    // Renders numbers as text, JSON, SVG and HTML.
    ("report", &["report"]),
    // The numbers behind `explain`, computed with the library.
    ("compute", &["compute"]),
    // Validated, serialisable settings: defaults, --config, --example presets.
    ("settings", &["settings"]),
    // Shared helpers with no knowledge of commands: input files, images, MPI, signals.
    (
        "base",
        &[
            "classify",
            "cluster",
            "distributed",
            "errors",
            "image_folder",
            "images",
            "input",
            "interrupt",
            "pause",
            "progress",
            "summary",
        ],
    ),
];

/// Longest file (lines before its `#[cfg(test)]` module) without a stated reason.
const MAX_FILE_LINES: usize = 600;
/// Longest function without a stated reason.
const MAX_FN_LINES: usize = 80;
/// Written at the top of a file (its `//!` docs) or of a function (its `///` docs) that
/// is longer on purpose, followed by the reason.
const LONG_REASON: &str = "Long on purpose:";

// ---------------------------------------------------------------------------------------
// Reading source text.

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Path, // ::
    Open,
    Close,
    Comma,
    Star,
    Semi,
    Other(char),
}

/// Tokens with their 1-based line numbers; comments and literals are dropped.
fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            i += 2;
            while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                line += usize::from(c[i] == '\n');
                i += 1;
            }
            i += 2;
        } else if ch == 'r' && (next == Some('"') || (next == Some('#') && raw_start(&c, i + 1))) {
            // Raw string r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            j += 1;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                line += usize::from(c[j] == '\n');
                j += 1;
            }
            i = j;
        } else if ch == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                line += usize::from(c.get(i) == Some(&'\n'));
                i += 1;
            }
            i += 1;
        } else if ch == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch.is_alphanumeric() || ch == '_' {
            let s = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(c[s..i].iter().collect()), line));
        } else if ch == ':' && next == Some(':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((
                match ch {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    ',' => Tok::Comma,
                    '*' => Tok::Star,
                    ';' => Tok::Semi,
                    o => Tok::Other(o),
                },
                line,
            ));
            i += 1;
        }
    }
    out
}

fn raw_start(c: &[char], mut j: usize) -> bool {
    while c.get(j) == Some(&'#') {
        j += 1;
    }
    c.get(j) == Some(&'"')
}

fn ident(t: Option<&(Tok, usize)>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

/// The text before the file's `#[cfg(test)] mod ... {` (tests may import anything).
fn without_tests(src: &str) -> &str {
    let lines: Vec<&str> = src.lines().collect();
    let mut offset = 0;
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        if t.starts_with("#[cfg(") && t.contains("test") {
            let next = lines[i + 1..].iter().find(|l| !l.trim().is_empty());
            if next.is_some_and(|n| {
                let n = n.trim_start();
                (n.starts_with("mod ") || n.starts_with("pub mod ")) && n.trim_end().ends_with('{')
            }) {
                return &src[..offset];
            }
        }
        offset += l.len() + 1;
    }
    src
}

// ---------------------------------------------------------------------------------------
// The module graph.

/// One source file: its module path (`crate`, `report::svg`), what it declares and uses.
#[derive(Debug, Default)]
struct Module {
    /// Child modules declared with `mod x;`.
    children: BTreeSet<String>,
    /// Paths used, each as written: first segment `crate`, `super`, `self` or a child.
    paths: Vec<Vec<String>>,
    /// `pub use` items: the name they bind here and the path they bind it to.
    reexports: Vec<(String, Vec<String>)>,
}

/// Module path of a source file relative to `src/`: `main.rs`/`lib.rs` -> `crate`,
/// `a/mod.rs` -> `a`, `a/b.rs` -> `a::b`.
fn module_name(rel: &Path) -> String {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !(stem == "mod" || ((stem == "main" || stem == "lib") && parts.is_empty())) {
        parts.push(stem.to_string());
    }
    if parts.is_empty() {
        "crate".into()
    } else {
        parts.join("::")
    }
}

/// Reads one file's declarations and paths.
fn parse_module(src: &str) -> Module {
    let t = tokens(without_tests(src));
    let mut m = Module::default();
    // `mod x;` declarations.
    for w in t.windows(3) {
        if let (Tok::Ident(k), Tok::Ident(name), Tok::Semi) = (&w[0].0, &w[1].0, &w[2].0) {
            if k == "mod" {
                m.children.insert(name.clone());
            }
        }
    }
    let starts =
        |s: &str, m: &Module| matches!(s, "crate" | "super" | "self") || m.children.contains(s);
    let mut i = 0;
    while i < t.len() {
        // `pub use` / `pub(crate) use`: re-exports.
        if ident(t.get(i)) == Some("pub") {
            let mut j = i + 1;
            if t.get(j).map(|x| &x.0) == Some(&Tok::Other('(')) {
                while j < t.len() && t[j].0 != Tok::Other(')') {
                    j += 1;
                }
                j += 1;
            }
            if ident(t.get(j)) == Some("use") {
                let (items, end) = use_tree(&t, j + 1, Vec::new());
                for (path, alias) in items {
                    if path.first().is_some_and(|s| starts(s, &m)) {
                        let name =
                            alias.unwrap_or_else(|| path.last().cloned().unwrap_or_default());
                        // Followed when resolving names, but no edge: a re-export makes
                        // a name visible here; the module's own code does not use it.
                        m.reexports.push((name, path));
                    }
                }
                i = end;
                continue;
            }
        }
        let path_start = i == 0 || t[i - 1].0 != Tok::Path;
        if let Some(first) = ident(t.get(i)) {
            if path_start && starts(first, &m) && t.get(i + 1).map(|x| &x.0) == Some(&Tok::Path) {
                let (items, end) = use_tree(&t, i, Vec::new());
                m.paths.extend(items.into_iter().map(|(p, _)| p));
                i = end;
                continue;
            }
        }
        i += 1;
    }
    m
}

/// A path as written (`crate`, `report`, `svg`) and the name it is bound to (`as`).
type UsePath = (Vec<String>, Option<String>);

/// Parses a path or use tree starting at `t[i]` under `prefix`: the full paths it names
/// (with their `as` names) and the index after it.
fn use_tree(t: &[(Tok, usize)], mut i: usize, prefix: Vec<String>) -> (Vec<UsePath>, usize) {
    let mut path = prefix;
    let mut out = Vec::new();
    loop {
        match t.get(i).map(|x| &x.0) {
            Some(Tok::Ident(s)) if s != "as" => {
                if s != "self" || path.is_empty() {
                    path.push(s.clone());
                }
                i += 1;
            }
            Some(Tok::Open) => {
                i += 1;
                loop {
                    match t.get(i).map(|x| &x.0) {
                        Some(Tok::Close) => {
                            return (out, i + 1);
                        }
                        Some(Tok::Comma) => i += 1,
                        None => return (out, i),
                        _ => {
                            let (items, end) = use_tree(t, i, path.clone());
                            out.extend(items);
                            i = end;
                        }
                    }
                }
            }
            Some(Tok::Star) => {
                out.push((path, None));
                return (out, i + 1);
            }
            _ => {}
        }
        if t.get(i).map(|x| &x.0) == Some(&Tok::Path) {
            i += 1;
            continue;
        }
        let alias = if ident(t.get(i)) == Some("as") {
            i += 2;
            ident(t.get(i - 1)).map(str::to_string)
        } else {
            None
        };
        out.push((path, alias));
        return (out, i);
    }
}

/// The import graph: module -> modules it uses (by module path).
type Graph = BTreeMap<String, BTreeSet<String>>;

/// Builds the graph of a crate from (file, module path, source) triples.
fn graph(files: &[(String, String, String)]) -> Graph {
    let mods: BTreeMap<String, Module> = files
        .iter()
        .map(|(_, name, src)| (name.clone(), parse_module(src)))
        .collect();
    let mut g = Graph::new();
    for (name, m) in &mods {
        let set = g.entry(name.clone()).or_default();
        for p in &m.paths {
            if let Some(target) = resolve(&mods, name, p, 0) {
                if &target != name {
                    set.insert(target);
                }
            }
        }
    }
    g
}

fn parent(module: &str) -> String {
    match module.rfind("::") {
        Some(k) => module[..k].to_string(),
        None if module == "crate" => "crate".into(),
        None => "crate".into(),
    }
}

fn join(module: &str, child: &str) -> String {
    if module == "crate" {
        child.to_string()
    } else {
        format!("{module}::{child}")
    }
}

/// The module that defines what `path` (used in module `from`) names.
fn resolve(
    mods: &BTreeMap<String, Module>,
    from: &str,
    path: &[String],
    depth: usize,
) -> Option<String> {
    if depth > 16 {
        return None;
    }
    let mut cur = from.to_string();
    let mut k = 0;
    match path.first()?.as_str() {
        "crate" => {
            cur = "crate".into();
            k = 1;
        }
        "self" => k = 1,
        "super" => {
            while path.get(k).map(String::as_str) == Some("super") {
                cur = parent(&cur);
                k += 1;
            }
        }
        _ => {}
    }
    while let Some(seg) = path.get(k) {
        let child = join(&cur, seg);
        if mods.contains_key(&child) {
            cur = child;
            k += 1;
        } else {
            break;
        }
    }
    // A name `cur` re-exports belongs to the module it comes from.
    if let Some(name) = path.get(k) {
        if let Some((_, target)) = mods.get(&cur)?.reexports.iter().find(|(n, _)| n == name) {
            if let Some(r) = resolve(mods, &cur, target, depth + 1) {
                return Some(r);
            }
        }
    }
    Some(cur)
}

/// A cycle in the graph, as `a -> b -> a`, if there is one.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        g: &Graph,
        n: &str,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(n.to_string(), Mark::Open);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match marks.get(m.as_str()).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let at = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(g, m, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(n.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for n in g.keys() {
        if marks.get(n.as_str()).copied().unwrap_or(Mark::New) == Mark::New {
            if let Some(c) = visit(g, n, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// Every cycle's modules, one strongly connected component a line (for the report).
fn cycles(g: &Graph) -> Vec<String> {
    let mut g = g.clone();
    let mut found = Vec::new();
    while let Some(c) = find_cycle(&g) {
        found.push(c.join(" -> "));
        // Drop the closing edge and look again.
        let (a, b) = (&c[c.len() - 2], &c[c.len() - 1]);
        g.get_mut(a).map(|s| s.remove(b));
    }
    found
}

/// The layer (index into `LAYERS`, 0 = top) of a CLI module.
fn layer_of(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap_or(module);
    LAYERS.iter().position(|(_, mods)| mods.contains(&top))
}

/// Imports that go up a layer, or modules in no layer.
fn layer_violations(g: &Graph) -> Vec<String> {
    let mut bad = Vec::new();
    for (from, tos) in g {
        let Some(lf) = layer_of(from) else {
            bad.push(format!("{from} is in no layer of LAYERS; add it"));
            continue;
        };
        for to in tos {
            match layer_of(to) {
                Some(lt) if lt < lf => bad.push(format!(
                    "{from} (layer {}) imports {to} (layer {}, above it)",
                    LAYERS[lf].0, LAYERS[lt].0
                )),
                Some(_) => {}
                None => bad.push(format!("{to} is in no layer of LAYERS; add it")),
            }
        }
    }
    bad
}

// ---------------------------------------------------------------------------------------
// Sizes.

/// Files and functions over the limits without a stated reason.
fn size_violations(file: &str, src: &str) -> Vec<String> {
    let code = without_tests(src);
    let mut bad = Vec::new();
    let lines = code.lines().count();
    let header: String = src
        .lines()
        .take_while(|l| l.trim_start().starts_with("//!") || l.trim().is_empty())
        .collect();
    if lines > MAX_FILE_LINES && !header.contains(LONG_REASON) {
        bad.push(format!(
            "{file}: {lines} lines before its tests (limit {MAX_FILE_LINES}); split it, or say why at its top (`//! {LONG_REASON} ...`)"
        ));
    }
    let t = tokens(code);
    let src_lines: Vec<&str> = code.lines().collect();
    for (i, (tok, line)) in t.iter().enumerate() {
        if *tok != Tok::Ident("fn".into()) {
            continue;
        }
        let Some(name) = ident(t.get(i + 1)) else {
            continue;
        };
        // The body: the first `{` before any `;` (a declaration without a body has none).
        let mut j = i + 2;
        while j < t.len() && t[j].0 != Tok::Open && t[j].0 != Tok::Semi {
            j += 1;
        }
        if t.get(j).map(|x| &x.0) != Some(&Tok::Open) {
            continue;
        }
        let mut depth = 0;
        let mut end = *line;
        for (tk, l) in &t[j..] {
            match tk {
                Tok::Open => depth += 1,
                Tok::Close => {
                    depth -= 1;
                    if depth == 0 {
                        end = *l;
                        break;
                    }
                }
                _ => {}
            }
        }
        let len = end + 1 - line;
        let docs: String = src_lines[..line - 1]
            .iter()
            .rev()
            .take_while(|l| {
                let l = l.trim_start();
                l.starts_with("///") || l.starts_with("#[") || l.starts_with("//")
            })
            .copied()
            .collect();
        if len > MAX_FN_LINES && !docs.contains(LONG_REASON) {
            bad.push(format!(
                "{file}:{line}: fn {name} is {len} lines (limit {MAX_FN_LINES}); split it, or say why above it (`/// {LONG_REASON} ...`)"
            ));
        }
    }
    bad
}

// ---------------------------------------------------------------------------------------
// The crates.

/// Every `.rs` file under `dir`, as (path for messages, module path, text).
fn crate_files(dir: &Path) -> Vec<(String, String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("source folder is readable") {
            let p = e.expect("folder entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut paths = Vec::new();
    walk(dir, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).expect("under dir").to_path_buf();
            let text = std::fs::read_to_string(&p).expect("source file is readable");
            (p.display().to_string(), module_name(&rel), text)
        })
        .collect()
}

fn cli_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn lib_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../backprop/src")
}

#[test]
fn the_cli_has_no_import_cycle() {
    let g = graph(&crate_files(&cli_src()));
    let found = cycles(&g);
    assert!(
        found.is_empty(),
        "import cycles in the CLI:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_cli_layer_imports_one_above_it() {
    let g = graph(&crate_files(&cli_src()));
    let bad = layer_violations(&g);
    assert!(bad.is_empty(), "layering of the CLI:\n{}", bad.join("\n"));
}

#[test]
fn the_library_has_no_import_cycle() {
    let g = graph(&crate_files(&lib_src()));
    let found = cycles(&g);
    assert!(
        found.is_empty(),
        "import cycles in the library:\n{}",
        found.join("\n")
    );
}

#[test]
fn cli_files_and_functions_are_short_or_say_why() {
    let bad: Vec<String> = crate_files(&cli_src())
        .iter()
        .flat_map(|(file, _, src)| size_violations(file, src))
        .collect();
    assert!(bad.is_empty(), "too long:\n{}", bad.join("\n"));
}

// ---------------------------------------------------------------------------------------
// The checker itself, on small examples where the answer is known.

fn files(list: &[(&str, &str)]) -> Vec<(String, String, String)> {
    list.iter()
        .map(|(rel, src)| {
            (
                rel.to_string(),
                module_name(Path::new(rel)),
                src.to_string(),
            )
        })
        .collect()
}

#[test]
fn the_checker_finds_a_cycle_through_use_groups_super_and_reexports() {
    let g = graph(&files(&[
        ("main.rs", "mod a;\nmod b;\nmod c;\npub use c::Thing;\nfn main() { a::run(); }"),
        ("a.rs", "use crate::{b::{self, Helper}, c};\npub fn run() { b::go(); }"),
        ("b/mod.rs", "mod inner;\npub fn go() { inner::f(); }"),
        ("b/inner.rs", "// crate::a::run in a comment is no edge\nconst S: &str = \"crate::a\";\npub fn f() { let _ = crate::Thing; }"),
        ("c.rs", "pub struct Thing;\nfn g() { super::a::run(); }"),
    ]));
    assert_eq!(
        g["crate"].iter().map(String::as_str).collect::<Vec<_>>(),
        ["a"],
        "a re-export is no edge"
    );
    assert_eq!(
        g["b::inner"].iter().collect::<Vec<_>>(),
        ["c"],
        "via the re-export"
    );
    assert!(g["b"].contains("b::inner"));
    // a -> b -> b::inner -> c -> a
    let c = find_cycle(&g).expect("there is a cycle");
    assert_eq!(c.first(), c.last());
    let joined = c.join(" -> ");
    for m in ["a", "b", "b::inner", "c"] {
        assert!(c.contains(&m.to_string()), "{joined}");
    }
    // Without c's call back up, there is none.
    let g = graph(&files(&[
        ("main.rs", "mod a;\nmod b;\nmod c;\nfn main() { a::run(); }"),
        ("a.rs", "use crate::{b::{self, Helper}, c};"),
        ("b.rs", "use crate::c::Thing;"),
        ("c.rs", "pub struct Thing;"),
    ]));
    assert_eq!(find_cycle(&g), None);
}

#[test]
fn the_checker_refuses_an_import_up_a_layer() {
    let g = graph(&files(&[
        ("main.rs", "mod report;\nmod commands;\nfn main() {}"),
        ("commands/mod.rs", "use crate::report::Page;"),
        (
            "report.rs",
            "pub struct Page;\nfn f() { crate::commands::x(); }",
        ),
    ]));
    let bad = layer_violations(&g);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].starts_with("report (layer report) imports commands"),
        "{bad:?}"
    );
    let g = graph(&files(&[("main.rs", "mod stray;"), ("stray.rs", "")]));
    assert!(layer_violations(&g)
        .iter()
        .any(|v| v.contains("stray is in no layer")));
}

#[test]
fn the_checker_measures_functions_and_honours_a_stated_reason() {
    let body = "    let x = 1;\n".repeat(MAX_FN_LINES);
    let long = format!("fn long() {{\n{body}}}\n");
    let bad = size_violations("x.rs", &long);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].contains("fn long is 82 lines"), "{bad:?}");
    let excused = format!("/// {LONG_REASON} one table of cases.\n{long}");
    assert!(size_violations("x.rs", &excused).is_empty());
    let in_tests = format!("fn short() {{}}\n#[cfg(test)]\nmod tests {{\n{long}}}\n");
    assert!(size_violations("x.rs", &in_tests).is_empty());
}
