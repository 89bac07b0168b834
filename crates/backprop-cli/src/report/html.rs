//! The page shell shared by `report.html` and the `explain` pages: one self-contained
//! HTML file with inline CSS and SVG, no scripts, fonts or network requests.

use std::fmt::Write;

use super::svg::esc;

const CSS: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2127}
main{max-width:1340px;margin:0 auto;padding:18px 28px 40px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:20px;margin:28px 0 8px;border-bottom:1px solid #d6d9de;padding-bottom:4px}
p{line-height:1.5;max-width:1000px}.lead{color:#444}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px}
figure{background:#fff;border:1px solid #d6d9de;border-radius:6px;margin:0;padding:8px}
figure svg{width:100%;height:auto;display:block}
figcaption{font-size:13px;color:#444;padding:4px 6px 2px;line-height:1.4}
table{border-collapse:collapse;background:#fff;font-size:14px;margin:6px 0}
td,th{border:1px solid #d6d9de;padding:4px 10px;text-align:left}th{background:#eef0f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.tables{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.toggle{margin:4px 0 10px;font-size:14px}.toggle input{margin-right:6px}
.log{display:none}
#logscale:checked~.charts .log{display:block}#logscale:checked~.charts .lin{display:none}
code,pre{background:#eef0f3;border-radius:3px;padding:1px 4px}
pre{padding:8px 12px;overflow-x:auto}
.note{color:#555;font-size:13px}
.tiles{display:flex;flex-wrap:wrap;gap:4px;align-items:flex-start}
.tiles img,.misses img{image-rendering:pixelated;border:1px solid #c8ccd2;display:block}
.filter-group{display:inline-flex;gap:1px}
.maprow{display:flex;gap:12px;align-items:flex-start;margin:6px 0}
.mapname{flex:0 0 170px;font-size:13px;color:#333;line-height:1.35}
.maps{display:grid;grid-template-columns:1fr;gap:14px}
.misses{display:flex;flex-wrap:wrap;gap:10px}
.misses figure{padding:6px}.misses figcaption{font-size:12px;padding:4px 0 0}
svg.scale{display:block;margin:6px 0}
";

/// A whole page: `title`, then `body` (HTML).
pub fn page(title: &str, body: &str) -> String {
    format!("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body><main>\n{body}\n</main></body></html>\n", esc(title))
}

/// A chart with a caption.
pub fn figure(svg: &str, caption: &str) -> String {
    format!("<figure>{svg}<figcaption>{caption}</figcaption></figure>\n")
}

/// A table of label / value rows.
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table><tr>");
    for h in head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr>");
    for r in rows {
        s.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let class = if i > 0
                && c.trim_start_matches(['-', '$'])
                    .chars()
                    .next()
                    .is_some_and(|ch| ch.is_ascii_digit())
            {
                " class=\"num\""
            } else {
                ""
            };
            let _ = write!(s, "<td{class}>{}</td>", esc(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>\n");
    s
}

/// A checkbox that switches every `.lin` chart after it (in the same section) for its
/// `.log` twin, in CSS alone. Checked (log) by default.
pub fn log_toggle() -> &'static str {
    "<input type=\"checkbox\" id=\"logscale\" checked><label class=\"toggle\" for=\"logscale\">logarithmic cost axis</label>\n"
}
