//! `--report html` and `mdsync report html`: one self-contained page per run, plan,
//! reconciliation or scenario, for the librarians who approve a sync. Inline CSS and JS, no
//! request of any kind (no CDN, no font, no image), readable with JS off (JS only adds the
//! filters). Written in pieces as the records come, so a run of any size is never held: a
//! stage's summary is written after its records and shown above them by CSS (`order: -1`).
//! Every value from the systems goes through [`esc`].

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Mutex;

use engine::report::{BreakerView, Outcome, RecordOutcome, Report};

mod rows;
pub use rows::*;

/// How many records a page lists by default (`--html-max-records`); the rest are counted.
pub const DEFAULT_MAX_RECORDS: u64 = 5_000;

/// What a page says about where it came from, gathered as the command line is read.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub config: Option<String>,
    pub environment: Option<String>,
    pub max_records: Option<u64>,
}

static CONTEXT: Mutex<Context> = Mutex::new(Context {
    config: None,
    environment: None,
    max_records: None,
});

/// Records what later pages will name (the configuration file, its environment).
pub fn note(update: impl FnOnce(&mut Context)) {
    update(&mut CONTEXT.lock().unwrap_or_else(|e| e.into_inner()));
}

pub fn context() -> Context {
    CONTEXT.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Text and attribute values made inert: `<script>`, `]]>`, quotes all render as text.
pub fn esc(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

const CSS: &str = r#"
:root{--fg:#1d2330;--muted:#5b6475;--line:#d8dde6;--bg:#f6f7f9;--card:#fff;
--created:#2b7a3d;--updated:#1f5fa8;--deleted:#8a3b12;--error:#b3261e;--conflict:#a15c00;
--stale:#6b5b95;--other:#5b6475}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header.page{padding:18px 28px;background:#24324a;color:#fff}
header.page h1{margin:0 0 4px;font-size:22px}
header.page dl{display:flex;flex-wrap:wrap;gap:4px 22px;margin:6px 0 0;font-size:13px;opacity:.9}
header.page dt{font-weight:600}header.page dd{margin:0 0 0 4px}
header.page dl div{display:flex}
main{padding:16px 28px 40px;max-width:1400px}
section.part{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:0 0 18px;padding:14px 18px}
section.part>h2{margin:0 0 8px;font-size:18px}
.flow{display:flex;flex-direction:column;gap:10px}
.summary{order:-1}
.facts{border-collapse:collapse;font-size:14px;margin:4px 0 8px}
.facts th{text-align:left;font-weight:600;padding:2px 14px 2px 0;color:var(--muted)}
.facts td{padding:2px 0}
.box{border-radius:6px;padding:8px 12px;margin:6px 0}
.box.stop{background:#fdecea;border:1px solid #f2b8b5}
.box.warn{background:#fff5e0;border:1px solid #f0d49b}
.box.note{background:#eef3fb;border:1px solid #c9d8f0}
.box ul{margin:4px 0 0;padding-left:20px}
svg.counts text{font-size:12px;fill:var(--fg)}
.o-created{fill:var(--created);background:var(--created)}.o-updated{fill:var(--updated);background:var(--updated)}
.o-deleted{fill:var(--deleted);background:var(--deleted)}.o-error{fill:var(--error);background:var(--error)}
.o-conflict{fill:var(--conflict);background:var(--conflict)}.o-stale{fill:var(--stale);background:var(--stale)}
.o-other{fill:var(--other);background:var(--other)}
.badge{display:inline-block;min-width:84px;text-align:center;color:#fff;border-radius:4px;padding:0 6px;font-size:12px;font-weight:600;margin-right:8px}
details.rec{border-top:1px solid var(--line);padding:5px 0}
details.rec>summary{cursor:pointer;list-style-position:outside}
.id{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px}
.title{font-style:italic;margin-left:6px}
.reason{display:block;color:var(--muted);font-size:13px;margin-left:96px}
.mark{font-size:11px;border:1px solid var(--line);border-radius:3px;padding:0 4px;margin-left:6px;color:var(--muted)}
table.diff{width:100%;border-collapse:collapse;table-layout:fixed;margin:6px 0 4px;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
table.diff th{text-align:left;font-family:system-ui,sans-serif;font-size:12px;color:var(--muted);padding:2px 6px;border-bottom:1px solid var(--line)}
table.diff td{vertical-align:top;padding:2px 6px;white-space:pre-wrap;word-break:break-word}
td.del{background:#fdecea}td.add{background:#e6f4ea}td.ctx{color:var(--muted)}
tr.side th{background:#f0f2f6;color:var(--fg)}
#filters{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;margin:0 0 14px;padding:8px 12px;background:var(--card);border:1px solid var(--line);border-radius:8px}
#filters input[type=search]{min-width:280px;padding:4px 8px}
.steps li{margin:4px 0}.pass{color:var(--created);font-weight:600}.fail{color:var(--error);font-weight:600}
footer{color:var(--muted);font-size:12px;padding:0 28px 20px}
"#;

/// Reveals the filters (hidden for a reader without JS, who sees every row) and applies them.
const JS: &str = r#"
(function(){
var f=document.getElementById('filters');if(!f)return;
var rows=[].slice.call(document.querySelectorAll('.rec'));var seen={};
rows.forEach(function(r){seen[r.getAttribute('data-outcome')]=1;});
var box=f.querySelector('.outcomes');
Object.keys(seen).sort().forEach(function(o){var l=document.createElement('label');
var c=document.createElement('input');c.type='checkbox';c.checked=true;c.value=o;
l.appendChild(c);l.appendChild(document.createTextNode(' '+o));box.appendChild(l);});
var q=f.querySelector('input[type=search]');
function apply(){var t=q.value.toLowerCase().trim();var on={};
[].forEach.call(box.querySelectorAll('input'),function(c){on[c.value]=c.checked;});
rows.forEach(function(r){var ok=on[r.getAttribute('data-outcome')]!==false&&
(!t||r.getAttribute('data-search').indexOf(t)>=0);r.hidden=!ok;});}
f.addEventListener('submit',function(e){e.preventDefault();});
q.addEventListener('input',apply);box.addEventListener('change',apply);
f.hidden=false;document.body.setAttribute('data-ready','1');
})();
"#;

/// The page's start: its title, where it came from, the filters (shown by JS).
pub fn head(title: &str, facts: &[(&str, String)]) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n\
         <meta name=\"generator\" content=\"mdsync {}\">\n<title>{}</title>\n<style>{CSS}</style>\n\
         </head>\n<body>\n<header class=\"page\"><h1>{}</h1><dl>",
        env!("CARGO_PKG_VERSION"),
        esc(title),
        esc(title)
    );
    for (k, v) in facts {
        let _ = write!(s, "<div><dt>{}</dt><dd>{}</dd></div>", esc(k), esc(v));
    }
    s.push_str(
        "</dl></header>\n<main>\n<form id=\"filters\" hidden>\
         <input type=\"search\" placeholder=\"IE PID, MMS ID or title\" aria-label=\"search\">\
         <span class=\"outcomes\"></span></form>\n",
    );
    s
}

/// The facts every page's header shows: configuration, environment, when, then `extra`.
pub fn page_facts(extra: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    let ctx = context();
    let mut facts: Vec<(&'static str, String)> = Vec::new();
    if let Some(c) = ctx.config {
        facts.push(("configuration", c));
    }
    if let Some(e) = ctx.environment {
        facts.push(("environment", e));
    }
    facts.push(("written", now_text()));
    facts.extend(extra);
    facts
}

pub(crate) fn now_text() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    formats::oai::Datestamp::from_unix(d.as_secs() as i64).to_string()
}

pub fn foot() -> String {
    format!(
        "</main>\n<footer>Written by mdsync {}. This page makes no network request; its script only \
         filters the rows.</footer>\n<script>{JS}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// A stage's (or a plan's) section opens; its records follow, its summary closes it.
pub fn part_open(heading: &str) -> String {
    format!(
        "<section class=\"part\"><h2>{}</h2><div class=\"flow\">\n",
        esc(heading)
    )
}

/// Counts as horizontal bars, one per outcome, drawn inline (no image file).
pub fn counts_svg(counts: &[(&str, u64)]) -> String {
    if counts.is_empty() {
        return "<p>No record.</p>".to_owned();
    }
    let max = counts.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    let (label_w, bar_w, row_h) = (130u64, 320u64, 22u64);
    let height = row_h * counts.len() as u64;
    let mut s = format!(
        "<svg class=\"counts\" role=\"img\" aria-label=\"records per outcome\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\">",
        label_w + bar_w + 80,
        label_w + bar_w + 80
    );
    for (i, (outcome, n)) in counts.iter().enumerate() {
        let y = i as u64 * row_h;
        let w = (bar_w * n / max).max(u64::from(*n > 0) * 2);
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\">{}</text><rect class=\"{}\" x=\"{label_w}\" y=\"{}\" width=\"{w}\" height=\"{}\" rx=\"3\"></rect><text x=\"{}\" y=\"{}\">{n}</text>",
            y + 15,
            esc(outcome),
            outcome_class(outcome),
            y + 3,
            row_h - 6,
            label_w + w + 6,
            y + 15
        );
    }
    s.push_str("</svg>");
    s
}

/// Where the records a page does not list can be read in full.
#[derive(Debug, Clone)]
pub enum FullList {
    /// A live run: its JSON report, or `history --run N`.
    Run(Option<i64>),
    /// A plan file.
    Plan(String),
}

/// A stage's summary (shown above its records) and the section's end.
pub fn part_close(
    r: &Report,
    not_listed: u64,
    elapsed: Option<std::time::Duration>,
    full: &FullList,
) -> String {
    let mut s = String::from("<div class=\"summary\">");
    if let Some(why) = &r.stopped {
        let _ = write!(
            s,
            "<div class=\"box stop\"><b>Stopped:</b> {} — what is below is what was done before.</div>",
            esc(why)
        );
    }
    if !r.warnings.is_empty() || !r.not_found.is_empty() {
        s.push_str("<div class=\"box warn\"><b>Warnings</b><ul>");
        for w in &r.warnings {
            let _ = write!(s, "<li>{}</li>", esc(w));
        }
        if !r.not_found.is_empty() {
            let _ = write!(
                s,
                "<li>not found (--only): {} — no record is known by it</li>",
                esc(&r.not_found.join(", "))
            );
        }
        s.push_str("</ul></div>");
    }
    s.push_str(&facts_table(r, elapsed));
    if r.dry_run && r.run.is_none() {
        s.push_str(&plan_box(r.stage, &counts_of(r), r.breaker.as_ref(), r));
    }
    let counts = counts_of(r);
    s.push_str(&counts_svg(&counts));
    let unchanged = r.counts.get("unchanged").copied().unwrap_or(0);
    if unchanged > 0 {
        let _ = write!(
            s,
            "<p>{unchanged} unchanged record(s): counted, not listed.</p>"
        );
    }
    if not_listed > 0 {
        let where_ = match full {
            FullList::Run(Some(run)) => format!(
                "in the JSON report (<code>--report json</code>) and in <code>mdsync history --run {run}</code>"
            ),
            FullList::Run(None) => "in the JSON report (<code>--report json</code>)".to_owned(),
            FullList::Plan(p) => format!("in the plan file <code>{}</code>", esc(p)),
        };
        let _ = write!(
            s,
            "<div class=\"box note\">{not_listed} more record(s) are not listed here \
             (--html-max-records); all of them are {where_}.</div>"
        );
    }
    s.push_str("</div></div></section>\n");
    s
}

fn counts_of(r: &Report) -> Vec<(&str, u64)> {
    r.counts
        .iter()
        .filter(|(k, _)| **k != "unchanged")
        .map(|(k, v)| (*k, *v))
        .collect()
}

fn facts_table(r: &Report, elapsed: Option<std::time::Duration>) -> String {
    let mut rows: Vec<(&str, String)> = Vec::new();
    rows.push((
        "run",
        match (r.run, r.dry_run) {
            (_, true) => "dry run: nothing was written".to_owned(),
            (Some(n), _) => format!("{n} (mdsync history --run {n})"),
            (None, _) => "—".to_owned(),
        },
    ));
    if let Some(d) = elapsed {
        rows.push(("duration", format!("{:.1} s", d.as_secs_f64())));
    }
    if r.harvested > 0 {
        rows.push(("records read", r.harvested.to_string()));
    }
    if r.alma_calls > 0 || r.stage == engine::stage::StageKind::Import {
        let total = r.alma_calls_estimate();
        let share = r
            .quota_share()
            .map(|(share, n)| format!(" — {:.2}% of the {n} calls left today", share * 100.0))
            .unwrap_or_default();
        rows.push((
            "Alma API calls",
            if r.dry_run {
                format!(
                    "{} reads made; a real run: about {total} ({} writes){share}",
                    r.alma_calls, r.planned_writes
                )
            } else {
                format!("{} ({} writes){share}", r.alma_calls, r.alma_writes)
            },
        ));
    }
    if r.rosetta_calls > 0 {
        rows.push(("IEWebServices calls", r.rosetta_calls.to_string()));
    }
    if r.files_written > 0 || r.update_dir.is_some() {
        rows.push((
            "update directory",
            format!(
                "{}{}",
                r.update_dir.as_deref().unwrap_or("—"),
                if r.files_written > 0 {
                    format!(" ({} package(s) written)", r.files_written)
                } else {
                    String::new()
                }
            ),
        ));
    }
    if let Some(t) = &r.transform_sha256 {
        rows.push(("transform (SHA-256)", t.clone()));
    }
    let mut s = String::from("<table class=\"facts\">");
    for (k, v) in rows {
        let _ = write!(s, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    s.push_str("</table>");
    s
}

/// For a plan (a dry run): what `mdsync execute` will do, and what the breaker lets through.
fn plan_box(
    stage: engine::stage::StageKind,
    counts: &[(&str, u64)],
    breaker: Option<&BreakerView>,
    r: &Report,
) -> String {
    let executable: u64 = counts
        .iter()
        .filter(|(k, _)| matches!(*k, "created" | "updated" | "deleted" | "conflict"))
        .map(|(_, n)| n)
        .sum();
    let what = counts
        .iter()
        .filter(|(k, _)| matches!(*k, "created" | "updated" | "deleted" | "conflict"))
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    let target = if stage == engine::stage::StageKind::Import {
        format!("{} write(s) to Alma", r.planned_writes)
    } else {
        "one updateMD package per IE into the update directory".to_owned()
    };
    let mut s = format!(
        "<div class=\"box note\"><b>What <code>mdsync execute</code> will do:</b> carry out these \
         {executable} record(s) ({}) and nothing else — {target}; a record that changed since \
         this review is skipped as <i>stale</i>.",
        if what.is_empty() {
            "none".to_owned()
        } else {
            esc(&what).into_owned()
        }
    );
    if let Some(b) = breaker {
        match b.allows {
            Some(n) if executable > n => {
                let _ = write!(
                    s,
                    " <b>The circuit breaker allows {n}</b> of the {} known records (max_change_ratio = {}): \
                     execute refuses this plan unless given --force.",
                    b.known, b.max_change_ratio
                );
            }
            Some(n) => {
                let _ = write!(
                    s,
                    " The circuit breaker allows {n} change(s) ({} known records × max_change_ratio {}): within it.",
                    b.known, b.max_change_ratio
                );
            }
            None => {
                let _ = write!(
                    s,
                    " The circuit breaker weighs nothing yet (the state knows {} records, fewer than {}).",
                    b.known, 100
                );
            }
        }
    }
    s.push_str("</div>");
    s
}

/// Counts the records a page lists, past its limit only counting them.
#[derive(Debug)]
pub struct Budget {
    max: u64,
    listed: std::sync::atomic::AtomicU64,
    not_listed: std::sync::atomic::AtomicU64,
}

impl Budget {
    pub fn new(max: u64) -> Self {
        Budget {
            max,
            listed: 0.into(),
            not_listed: 0.into(),
        }
    }

    /// Whether a record is listed (`unchanged` never is, nor is it counted here).
    pub fn take(&self, outcome: Outcome) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        if outcome == Outcome::Unchanged {
            return false;
        }
        if self.listed.fetch_add(1, SeqCst) < self.max {
            true
        } else {
            self.listed.fetch_sub(1, SeqCst);
            self.not_listed.fetch_add(1, SeqCst);
            false
        }
    }

    /// Records not listed since the last call (a stage's own).
    pub fn take_not_listed(&self) -> u64 {
        self.not_listed.swap(0, std::sync::atomic::Ordering::SeqCst)
    }
}

/// A section of rows under column headings (reconcile's findings of one kind, OAI checks);
/// `outcome` names each row's kind for the filters.
pub struct Table {
    pub heading: String,
    pub columns: Vec<&'static str>,
    /// Each row: its kind (filtered on) and its cells.
    pub rows: Vec<(String, Vec<String>)>,
}

/// A whole page of tables, with boxes (class, text) above them: for results that are held
/// whole anyway (a reconciliation, OAI checks, a status).
pub fn table_page(
    title: &str,
    facts: Vec<(&'static str, String)>,
    boxes: &[(&str, String)],
    counts: &[(&str, u64)],
    tables: &[Table],
) -> String {
    let mut s = head(title, &page_facts(facts));
    s.push_str("<section class=\"part\"><h2>Summary</h2>");
    for (class, text) in boxes {
        let _ = write!(s, "<div class=\"box {}\">{}</div>", esc(class), esc(text));
    }
    s.push_str(&counts_svg(counts));
    s.push_str("</section>\n");
    for t in tables {
        let _ = write!(
            s,
            "<section class=\"part\"><h2>{} <small>({})</small></h2><table class=\"facts\"><tr>",
            esc(&t.heading),
            t.rows.len()
        );
        for c in &t.columns {
            let _ = write!(s, "<th>{}</th>", esc(c));
        }
        s.push_str("</tr>");
        for (kind, cells) in &t.rows {
            let search = cells.join(" ").to_lowercase();
            let _ = write!(
                s,
                "<tr class=\"rec\" data-outcome=\"{}\" data-search=\"{}\">",
                esc(kind),
                esc(&search)
            );
            for c in cells {
                let _ = write!(s, "<td>{}</td>", esc(c));
            }
            s.push_str("</tr>");
        }
        s.push_str("</table></section>\n");
    }
    s.push_str(&foot());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_from_the_systems_render_as_text() {
        let changes = vec![
            "- 245 10 $a <script>alert(1)</script>".to_owned(),
            "+ 245 10 $a ]]> & \"quoted\" 'x'".to_owned(),
        ];
        let rec = RecordOutcome {
            title: Some("<img src=x onerror=alert(1)>".to_owned()),
            reason: Some("</details><script>".to_owned()),
            changes,
            ie_pid: Some("IE1\"><b>".to_owned()),
            ..RecordOutcome::error("oai:x:<i>", None)
        };
        let html = row(&Row::of("import", &rec));
        for raw in ["<script", "<img", "</details><", "<i>", "\"><b>"] {
            assert!(!html.contains(raw), "{raw} left raw in {html}");
        }
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("]]&gt; &amp; &quot;quoted&quot; &#39;x&#39;"),
            "{html}"
        );
    }

    #[test]
    fn a_diff_pairs_removals_with_additions_and_heads_each_side_of_a_conflict() {
        let lines: Vec<String> = [
            "- 245 10 $a Old",
            "+ 245 10 $a New",
            "+ 650 _0 $a Added",
            "rosetta + dc:description \"Curator\"",
            "alma - dc:description \"Old\"",
            "alma + dc:description \"Cataloguer\"",
        ]
        .map(str::to_owned)
        .to_vec();
        let html = diff("harvest", &lines);
        assert_eq!(html.matches("<tr>").count(), 5, "{html}");
        assert!(
            html.contains(
                "<td class=\"del\">245 10 $a Old</td><td class=\"add\">245 10 $a New</td>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<td></td><td class=\"add\">650 _0 $a Added</td>"),
            "{html}"
        );
        assert!(
            html.contains("Rosetta&#39;s own change") || html.contains("Rosetta's own change"),
            "{html}"
        );
        assert!(html.contains("Alma's change since the last sync"), "{html}");
    }

    #[test]
    fn a_budget_lists_up_to_its_limit_and_counts_the_rest() {
        let b = Budget::new(2);
        let taken: Vec<bool> = [
            Outcome::Created,
            Outcome::Unchanged,
            Outcome::Error,
            Outcome::Updated,
        ]
        .into_iter()
        .map(|o| b.take(o))
        .collect();
        assert_eq!(taken, [true, false, true, false]);
        assert_eq!(b.take_not_listed(), 1);
        assert_eq!(b.take_not_listed(), 0);
    }
}
