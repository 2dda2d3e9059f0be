//! `mdsync demo`: the whole round trip on embedded mocks, in seconds, explained as it goes.

use std::time::Instant;

use scenarios::runner::{Target, run_keeping};
use scenarios::scenario::Scenario;

const DEMO: &str = include_str!("demo.toml");

pub async fn demo(keep_running: bool, keep: bool) -> anyhow::Result<bool> {
    let scenario = Scenario::parse(DEMO, "demo.toml").map_err(anyhow::Error::msg)?;
    let work = std::env::temp_dir().join(format!("mdsync-demo-{}", std::process::id()));
    println!("mdsync demo: Ex Libris Rosetta and Alma, both mocked in this process");
    println!(
        "  Rosetta publishes {} IEs over OAI-PMH, among them the worked example \"Sunset at Montmajour\" (IE1000)\n",
        scenario.mocks.generate
    );
    let t = Instant::now();
    let out = run_keeping(&scenario, Target::Mocks, &work, keep_running)
        .await
        .map_err(anyhow::Error::msg)?;
    let explain = [
        "import   Rosetta → Alma: a bib and a remote representation per IE",
        "harvest  Alma → Rosetta: Alma publishes what mdsync wrote; every record is an echo, no package",
        "edit     a cataloguer adds a description to IE1000's bib in Alma",
        "harvest  the enrichment comes back: one updateMD package",
        "apply    IEWebServices updateMD; the package moves to done/",
    ];
    // The clock step that keeps the demo's windows apart is the scenario's, not the story's.
    for (line, why) in out
        .log
        .iter()
        .filter(|l| !l.contains(" s pass)"))
        .zip(explain)
    {
        println!("  {why}\n      {line}");
    }
    for (step, r) in out
        .records
        .iter()
        .filter(|(_, r)| r.ie_pid.as_deref() == Some("IE1000"))
    {
        if !r.changes.is_empty() {
            println!(
                "\n  {step}: what Rosetta receives for IE1000 ({}):",
                r.outcome.as_str()
            );
            for c in &r.changes {
                println!("      {c}");
            }
        }
    }
    if out.log.iter().any(|l| l.starts_with("convergence cycle 2")) && out.passed() {
        println!(
            "\n  converged: a second full cycle (import --full, harvest --full, apply) wrote nothing in either direction"
        );
    }
    if !out.passed() {
        println!("\n  Something did not come out as expected:");
        for m in &out.mismatches {
            println!("    {m}");
        }
    }
    let config = work.join("mdsync.toml");
    std::fs::write(&config, &out.config_toml)?;
    // The files stay only when asked for (or while the mocks keep running): no litter in /tmp.
    let keep = keep || keep_running;
    if keep {
        println!(
            "\n  {:.1} s. updateMD packages: {}; state: {} (sqlite3, or `mdsync --config {} history`)",
            t.elapsed().as_secs_f64(),
            work.join("updates").join("done").display(),
            work.join("state.sqlite").display(),
            config.display()
        );
    } else {
        println!(
            "\n  {:.1} s. Run with --keep to look at the updateMD packages and the state afterwards.",
            t.elapsed().as_secs_f64()
        );
    }
    let passed = out.passed();
    let mut out = out;
    if let Some(mocks) = out.kept.take() {
        println!("\n  The mocks keep running (Ctrl-C stops them):");
        println!(
            "    mock-rosetta  {}  (OAI-PMH {}, SOAP {})",
            mocks.rosetta.base_url(),
            mocks.rosetta.oai_url(),
            mocks.rosetta.soap_url()
        );
        println!(
            "    mock-alma     {}  (REST {}, OAI-PMH {})",
            mocks.alma.base_url(),
            mocks.alma.api_url(),
            mocks.alma.oai_url()
        );
        println!("  Try: curl '{}?verb=Identify'", mocks.rosetta.oai_url());
        println!(
            "  A ready mdsync.toml ({}); run with ALMA_API_KEY=sandbox-key ROSETTA_PASSWORD=mdsync:\n",
            config.display()
        );
        for line in out.config_toml.lines() {
            println!("    {line}");
        }
        tokio::signal::ctrl_c().await?;
        mocks.shutdown().await;
    }
    if !keep {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(passed)
}
