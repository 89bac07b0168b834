//! Opens `report.html` and the `backprop explain` pages in headless Chromium: no console
//! errors, every chart present and drawn with a non-zero size, every image (the PNG
//! tiles of a convolutional network's report) decoded and laid out, and a screenshot
//! of each page under `<target>/tmp/screenshots/`. Needs /usr/bin/chromium, so the tests are
//! `#[ignore]`d in the plain `cargo test`; `.ci/run` installs Chromium and runs them with
//! `-- --ignored`, where a missing browser fails the test instead of passing it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Injected before `</body>` of a copy of each page: measures every chart and writes
/// the findings into the DOM, which `--dump-dom` then prints.
const CHECKER: &str = r#"<script>
(function () {
  var charts = document.querySelectorAll('svg.chart'), bad = [], visible = 0;
  charts.forEach(function (svg, i) {
    var name = (svg.getAttribute('aria-label') || ('chart ' + i)).replace(/"/g, "'");
    var marks = svg.querySelectorAll('[clip-path] path, [clip-path] circle, [clip-path] rect, path[clip-path], rect[clip-path]');
    if (marks.length === 0) { bad.push(name + ': no data drawn'); return; }
    if (svg.getClientRects().length === 0) { return; } // a hidden twin (linear/log)
    visible += 1;
    var r = svg.getBoundingClientRect();
    if (r.width < 200 || r.height < 150) { bad.push(name + ': ' + r.width + 'x' + r.height); }
    var drawn = 0;
    marks.forEach(function (m) { var b = m.getBBox(); if (b.width > 0 || b.height > 0) { drawn += 1; } });
    if (drawn === 0) { bad.push(name + ': marks have no size'); }
  });
  var out = document.createElement('div');
  out.id = 'chart-check';
  out.setAttribute('data-total', charts.length);
  out.setAttribute('data-visible', visible);
  out.setAttribute('data-bad', bad.join('; '));
  document.body.appendChild(out);
  // Images decode after parsing: count them once the page has loaded.
  window.addEventListener('load', function () {
    var imgs = document.querySelectorAll('img'), broken = [];
    imgs.forEach(function (im, i) {
      var r = im.getBoundingClientRect();
      if (!im.complete || im.naturalWidth === 0 || r.width === 0 || r.height === 0) {
        broken.push((im.className || 'img') + ' ' + i);
      }
    });
    var done = document.createElement('div');
    done.id = 'image-check';
    done.setAttribute('data-images', imgs.length);
    done.setAttribute('data-broken-images', broken.slice(0, 10).join('; '));
    document.body.appendChild(done);
  });
})();
</script>"#;

fn chromium_args(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// Runs Chromium with a fresh profile, killing it after two minutes.
fn chromium(extra: &[String], work: &Path) -> (String, String) {
    let profile = work.join(format!(
        "profile-{}",
        work.read_dir().map_or(0, |d| d.count())
    ));
    let mut child = Command::new(CHROMIUM)
        .args(chromium_args(&profile))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish within two minutes: {extra:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(&profile);
    (t_out.join().unwrap(), t_err.join().unwrap())
}

/// Console messages Chromium logged for the page.
fn console_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

struct Checked {
    total: usize,
    visible: usize,
    bad: String,
    console: Vec<String>,
    /// `<img>` elements, and those not decoded or of no size.
    images: usize,
    broken_images: String,
}

/// Loads a copy of `page` with the checker in headless Chromium.
fn check(page: &Path, work: &Path) -> Checked {
    let html = std::fs::read_to_string(page).unwrap();
    let probe = work.join(format!(
        "probe-{}.html",
        page.parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
    ));
    std::fs::write(
        &probe,
        html.replace("</body>", &format!("{CHECKER}</body>")),
    )
    .unwrap();
    let (dom, stderr) = chromium(
        &["--dump-dom".into(), format!("file://{}", probe.display())],
        work,
    );
    let tag = dom.split("id=\"chart-check\"").nth(1).unwrap_or_else(|| {
        panic!(
            "{}: the checker did not run; DOM:\n{}\nstderr:\n{stderr}",
            page.display(),
            &dom[..dom.len().min(2000)]
        )
    });
    let attr = |name: &str| {
        tag.split(&format!("{name}=\""))
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("")
            .to_string()
    };
    assert!(
        tag.contains("id=\"image-check\""),
        "{}: the image check did not run (no load event before the dump)",
        page.display()
    );
    Checked {
        images: attr("data-images").parse().unwrap(),
        broken_images: attr("data-broken-images"),
        total: attr("data-total").parse().unwrap(),
        visible: attr("data-visible").parse().unwrap(),
        bad: attr("data-bad"),
        console: console_errors(&stderr)
            .into_iter()
            .map(String::from)
            .collect(),
    }
}

fn screenshot(page: &Path, png: &Path, work: &Path) {
    chromium(
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,4000".into(),
            "--hide-scrollbars".into(),
            format!("file://{}", page.display()),
        ],
        work,
    );
    let len = std::fs::metadata(png).map_or(0, |m| m.len());
    assert!(
        len > 20_000,
        "{}: screenshot of {} bytes",
        png.display(),
        len
    );
}

fn bin(args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_backprop"))
        .args(args)
        .output()
        .expect("the binary runs");
    assert!(
        o.status.success(),
        "{args:?}:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn work_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("backprop-browser-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Fails (never passes quietly) when the browser is missing.
fn require_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install chromium chromium-driver (.ci/run does this)"
    );
}

#[test]
#[ignore = "needs /usr/bin/chromium; .ci/run installs it and runs this with --ignored"]
fn pages_render_in_headless_chromium() {
    require_chromium();
    let work = work_dir("pages");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (run, cnn, descent, landscape, lr) = (
        work.join("run"),
        work.join("cnn"),
        work.join("descent"),
        work.join("landscape"),
        work.join("lr"),
    );
    bin(&[
        "train",
        "--hidden",
        "32,16",
        "--epochs",
        "6",
        "--lr",
        "0.005",
        "--out",
        &s(&run),
        "--quiet",
    ]);
    // A convolutional network's report adds the filters, feature maps and misclassified
    // images (PNG tiles).
    bin(&[
        "train",
        "--example",
        "digits",
        "--layers",
        "input 1x8x8, conv 8 3x3 pad 1 relu, maxpool 2, conv 16 3x3 pad 1 relu, maxpool 2, flatten, dense 10",
        "--epochs",
        "2",
        "--out",
        &s(&cnn),
        "--quiet",
    ]);
    bin(&["explain", "descent", "--out", &s(&descent)]);
    bin(&[
        "explain",
        "landscape",
        "--model",
        &s(&run),
        "--rows",
        "1000",
        "--grid",
        "11",
        "--points",
        "21",
        "--out",
        &s(&landscape),
    ]);
    bin(&[
        "explain",
        "lr",
        "--hidden",
        "32,16",
        "--steps",
        "150",
        "--out",
        &s(&lr),
    ]);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    // Page, charts in its HTML, charts visible at once (the report shows the log or the
    // linear twin of each cost chart). The CNN's report has one weight histogram (its
    // one dense layer) where the MLP's has three.
    for (name, page, total, visible) in [
        ("report", run.join("report.html"), 12, 10),
        ("report-cnn", cnn.join("report.html"), 10, 8),
        ("descent", descent.join("index.html"), 3, 3),
        ("landscape", landscape.join("index.html"), 3, 3),
        ("lr", lr.join("index.html"), 1, 1),
    ] {
        let c = check(&page, &work);
        assert!(
            c.console.is_empty(),
            "{name}: console errors: {:?}",
            c.console
        );
        assert!(c.bad.is_empty(), "{name}: {}", c.bad);
        assert_eq!(
            (c.total, c.visible),
            (total, visible),
            "{name}: charts in the DOM (total, visible)"
        );
        assert!(c.broken_images.is_empty(), "{name}: {}", c.broken_images);
        let html = std::fs::read_to_string(&page).unwrap();
        assert_eq!(c.images, html.matches("<img ").count(), "{name}: images");
        if name == "report-cnn" {
            // 8 filters twice, 3 inputs and their 3 x 48 maps, and the misses.
            assert!(c.images > 8 + 8 + 3 + 3 * 48, "{name}: {} images", c.images);
        }
        screenshot(&page, &shots.join(format!("{name}.png")), &work);
        eprintln!(
            "{name}: {} charts ({} visible), screenshot {}",
            c.total,
            c.visible,
            shots.join(format!("{name}.png")).display()
        );
    }
}

/// The checker itself must catch a console error and an empty chart.
#[test]
#[ignore = "needs /usr/bin/chromium; .ci/run installs it and runs this with --ignored"]
fn the_browser_check_catches_errors() {
    require_chromium();
    let work = work_dir("self-check");
    std::fs::create_dir_all(work.join("bad")).unwrap();
    let page = work.join("bad/index.html");
    std::fs::write(&page, "<!DOCTYPE html><html><body><svg class=\"chart\" aria-label=\"empty\" width=\"400\" height=\"300\"><rect width=\"400\" height=\"300\" fill=\"white\"/></svg><img class=\"map\" src=\"data:image/png;base64,AAAA\" width=\"20\" height=\"20\"><script>console.error('boom'); undefinedFunction();</script></body></html>").unwrap();
    let c = check(&page, &work);
    assert!(c.bad.contains("empty: no data drawn"), "{}", c.bad);
    assert_eq!(c.images, 1);
    assert!(c.broken_images.contains("map 0"), "{}", c.broken_images);
    assert!(
        c.console.iter().any(|l| l.contains("boom")),
        "{:?}",
        c.console
    );
    assert!(
        c.console.iter().any(|l| l.contains("Uncaught")),
        "{:?}",
        c.console
    );
}
