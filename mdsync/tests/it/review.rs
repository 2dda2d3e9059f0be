//! Review pages: `--report html` and `mdsync report html` write one self-contained page a
//! librarian can open and decide on — escaped values, a plan's hash that `execute` holds it to,
//! and (under `MDSYNC_INTEROP=1`) a real browser that renders it with no error and no request.

use std::path::Path;

use crate::support::{mdsync, rosetta_add, rosetta_new_ie, setup};
use scenarios::Mocks;

/// mdsync with the test's config and keys, any arguments.
async fn run(cfg: &Path, args: &[&str]) -> std::process::Output {
    let cfg = cfg.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        mdsync()
            .arg("--config")
            .arg(&cfg)
            .args(&args)
            .env("ALMA_API_KEY", "sandbox-key")
            .env("ROSETTA_PASSWORD", "mdsync")
            .output()
            .expect("runs")
    })
    .await
    .expect("join")
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One whole, self-contained page: a document from doctype to `</html>`, with no reference to
/// anything outside it.
fn check_page(page: &str) {
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.trim_end().ends_with("</html>"), "{page}");
    for outside in [" src=", " href=", "url(", "@import", "http://", "https://"] {
        assert!(
            !page.contains(outside),
            "{outside} in a self-contained page"
        );
    }
    // The only script is the page's own filter.
    assert_eq!(page.matches("<script").count(), 1, "{page}");
}

/// Stable text for a snapshot: no dates, hashes, generated ids, temporary paths or timings.
fn redactor() -> &'static scenarios::redact::Redactor {
    static PAGES: std::sync::LazyLock<scenarios::redact::Redactor> =
        std::sync::LazyLock::new(|| {
            let time = "2026-12-01T12:00:00Z";
            scenarios::redact::Redactor::default()
                .rule("time", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[time]", time)
                .and_then(|r| {
                    r.rule(
                        "sha256",
                        r"[0-9a-f]{64}",
                        "[sha256]",
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                    )
                })
                .and_then(|r| r.rule("mms_id", r"99\d{10,}", "[mms_id]", "9910000000026204"))
                .and_then(|r| {
                    r.rule(
                        "scratch path",
                        r"/[^\s<>&]*mdsync-cli-[^\s<>&]*",
                        "[path]",
                        "/tmp/mdsync-cli-review-AbC123/plan.json",
                    )
                })
                .and_then(|r| r.rule("duration", r"\d+\.\d s", "[duration]", "0.4 s"))
                // The mock's quota counts every call of the test, some made concurrently.
                .and_then(|r| {
                    r.rule(
                        "quota share",
                        r"\d+\.\d+% of the \d+ calls left today",
                        "[share] of the [n] calls left today",
                        "0.01% of the 99989 calls left today",
                    )
                })
                // A later harvest's window starts at the second the last one ended, inclusive: a
                // record Alma republished in that second is read again (and is unchanged) or not,
                // as the clock falls. (The first harvest has no window: not redacted.)
                .and_then(|r| {
                    r.rule(
                        "the window's shared second",
                        r"(step [2-9] \(sync\): harvest: )(?:unchanged 1)?(</li>)",
                        "${1}[unchanged 0 or 1]${2}",
                        "step 5 (sync): harvest: unchanged 1</li>",
                    )
                })
                .and_then(|r| {
                    r.rule(
                        "package timestamp",
                        r"_\d{14}_",
                        "_[yyyyMMddHHmmss]_",
                        "Updates_20261201120000_IE1.xml",
                    )
                })
                .and_then(|r| {
                    r.rule(
                        "version",
                        r"mdsync \d+\.\d+\.\d+",
                        "mdsync [version]",
                        "mdsync 0.1.0",
                    )
                })
                .expect("review redaction rules")
        });
    &PAGES
}

#[test]
fn every_review_redaction_rule_matches_what_it_is_for() {
    redactor().check().expect("rules");
}

fn redact(page: &str) -> String {
    redactor().apply(page)
}

fn snapshot(name: &str, page: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../../snapshots/mdsync");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name, redact(page)));
}

async fn set_title(mocks: &Mocks, pid: &str, title: &str) {
    let mut ie = mocks.rosetta.ie(pid).expect("ie").dc;
    for e in ie.elements.iter_mut().filter(|e| e.name == "title") {
        e.value = title.to_owned();
    }
    mocks
        .rosetta
        .admin()
        .put_dc(
            pid,
            &ie.write(formats::dc::Container::DcRecord).expect("xml"),
        )
        .await
        .expect("edit");
}

const HOSTILE: &str = "<script>alert('x')</script> ]]> & \"Sunset\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_librarian_reviews_a_plan_page_and_executes_exactly_what_was_reviewed() {
    let (scratch, mocks, cfg) = setup("review", 3, 91).await;
    set_title(&mocks, "IE1000", HOSTILE).await;
    // A run's page: one section, every created record listed with its MARC.
    let page = ok(&run(&cfg, &["import", "--report", "html"]).await);
    check_page(&page);
    assert_eq!(page.matches("<details class=\"rec\"").count(), 3, "{page}");
    assert!(
        !page.contains("<script>alert"),
        "a title is text, never markup"
    );
    assert!(page.contains(
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; ]]&gt; &amp; &quot;Sunset&quot;"
    ));
    snapshot("review_import_run", &page);

    // Changes in Rosetta, a plan, its page.
    rosetta_add(&mocks, "IE1001", "subject", "Landscape painting").await;
    rosetta_add(&mocks, "IE1002", "description", "Oil on canvas").await;
    let plan = scratch.path().join("plan.json");
    let plan_s = plan.display().to_string();
    ok(&run(
        &cfg,
        &[
            "import",
            "--full",
            "--dry-run",
            "--plan",
            &plan_s,
            "--report",
            "json",
        ],
    )
    .await);
    let html = scratch.path().join("plan.html");
    let html_s = html.display().to_string();
    let out = run(&cfg, &["report", "html", &plan_s, "-o", &html_s]).await;
    ok(&out);
    let page = std::fs::read_to_string(&html).expect("page written");
    check_page(&page);
    let sha = {
        use std::fmt::Write as _;
        let bytes = std::fs::read(&plan).expect("plan");
        let digest = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
        digest.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    };
    assert!(page.contains(&sha), "the page shows the plan's SHA-256");
    assert!(
        page.contains("What <code>mdsync execute</code> will do"),
        "{page}"
    );
    assert_eq!(page.matches("<details class=\"rec\"").count(), 2, "{page}");
    assert!(page.contains("Landscape painting"), "{page}");
    snapshot("review_import_plan", &page);

    // What was reviewed is what runs: another hash refuses, the shown one executes.
    let other = "0".repeat(64);
    let refused = run(&cfg, &["execute", &plan_s, "--expect-sha256", &other]).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("changed since its review"));
    let done = run(
        &cfg,
        &[
            "execute",
            &plan_s,
            "--expect-sha256",
            &sha,
            "--report",
            "json",
        ],
    )
    .await;
    let report: serde_json::Value = serde_json::from_str(&ok(&done)).expect("json");
    assert_eq!(report["counts"]["updated"], 2, "{report:#}");

    // A past run from the state store, with the diffs its report showed.
    let past = scratch.path().join("run.html");
    let past_s = past.display().to_string();
    ok(&run(&cfg, &["report", "html", "2", "-o", &past_s]).await);
    let page = std::fs::read_to_string(&past).expect("page");
    check_page(&page);
    assert_eq!(page.matches("<details class=\"rec\"").count(), 2, "{page}");
    assert!(
        page.contains("Oil on canvas"),
        "the run's diff is kept: {page}"
    );
    snapshot("review_past_run", &page);

    // Reconcile: one section per finding kind.
    rosetta_new_ie(&mocks, "IE2000", "Not in Alma").await;
    let out = run(&cfg, &["reconcile", "--report", "html"]).await;
    assert_eq!(out.status.code(), Some(1), "a finding exits 1");
    let page = String::from_utf8_lossy(&out.stdout).into_owned();
    check_page(&page);
    assert!(
        page.contains("<h2>ie-without-bib <small>(1)</small></h2>"),
        "{page}"
    );
    snapshot("review_reconcile", &page);

    if std::env::var_os("MDSYNC_INTEROP").is_some() {
        for p in [&html, &past] {
            browser_renders(p, &scratch.path().join("shot.png"));
        }
    }
    mocks.shutdown().await;
}

#[test]
fn a_scenario_page_puts_failures_first_and_every_step_with_its_records() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/library/edits-on-both-sides-merge.toml"
    );
    let out = mdsync()
        .args(["scenario", "run", file, "--report", "html"])
        .output()
        .expect("runs");
    let page = ok(&out);
    check_page(&page);
    assert_eq!(
        page.matches("<span class=\"pass\">pass</span>").count(),
        7,
        "{page}"
    );
    assert!(page.contains("step 2 (edit in Alma: IE3200)"), "{page}");
    snapshot("review_scenario", &page);
}

/// Headless Chromium opens the page from disk: the script runs to its end (it marks the body),
/// the console has no error and no refused request (the page's own Content-Security-Policy
/// forbids every request, and Chromium says so on the console for each one tried — checked on
/// a copy with an image from the network put in), and a screenshot is taken.
fn browser_renders(page: &Path, shot: &Path) {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("MDSYNC_INTEROP=1 needs headless Chromium (Debian package chromium)");
    let dir = tempfile::tempdir().expect("dir");
    let open = |file: &Path, extra: &[String]| {
        let out = std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .args(extra)
            .arg(format!("file://{}", file.display()))
            .output()
            .expect("chromium runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let page_errors = |stderr: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(stderr)
            .lines()
            .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("Refused to"))
            .map(str::to_owned)
            .collect()
    };
    let out = open(page, &["--dump-dom".to_owned()]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page's script ran: {dom}"
    );
    assert!(
        !dom.contains("<form id=\"filters\" hidden"),
        "the filters are shown"
    );
    assert_eq!(page_errors(&out.stderr), Vec::<String>::new(), "console");
    // The control: a request put into a copy is refused, and the console says so.
    let html = std::fs::read_to_string(page).expect("page");
    let leaky = dir.path().join("leaky.html");
    std::fs::write(
        &leaky,
        html.replacen(
            "<main>",
            "<main><img src=\"http://192.0.2.1/pixel.png\">",
            1,
        ),
    )
    .expect("copy");
    let out = open(&leaky, &["--dump-dom".to_owned()]);
    assert!(
        page_errors(&out.stderr)
            .iter()
            .any(|l| l.contains("violates the following Content Security Policy")),
        "the console must show a refused request: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    open(
        page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,900".to_owned(),
        ],
    );
    let png = std::fs::read(shot).expect("screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a screenshot of the page"
    );
}

#[test]
fn completions_and_a_man_page_come_from_the_command_line_definition() {
    let out = mdsync()
        .args(["completions", "bash"])
        .output()
        .expect("runs");
    let script = ok(&out);
    assert!(
        script.contains("_mdsync()") && script.contains("--html-max-records"),
        "{script}"
    );
    let out = mdsync().arg("man").output().expect("runs");
    let page = ok(&out);
    assert!(
        page.starts_with(".ie") || page.contains(".TH mdsync"),
        "{page}"
    );
    assert!(page.contains("reconcile"), "every command is in it");
}
