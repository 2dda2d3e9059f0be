//! Every scenario of `library/`, each checked against its own expectations and the convergence
//! invariant, with snapshots of what the engine generated under `snapshots/<scenario>/`.
//! `INSTA_GLOB_FILTER=worked-example-round-trip.toml` (or `just test-scenarios worked-example-round-trip`) runs one.

use scenarios::runner::{Target, run};
use scenarios::scenario::Scenario;

#[test]
fn the_scenario_library() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut failed = Vec::new();
    let mut ran: Vec<String> = Vec::new();
    insta::glob!("../../library", "*.toml", |path| {
        let scenario = match Scenario::load(path) {
            Ok(s) => s,
            Err(e) => {
                failed.push(e.to_string());
                return;
            }
        };
        let name = scenario.scenario.name.clone();
        ran.push(name.clone());
        let work = crate::support::scratch();
        let outcome = match rt.block_on(run(&scenario, Target::Mocks, work.path())) {
            Ok(o) => o,
            Err(e) => {
                failed.push(format!("{name}: {e}"));
                return;
            }
        };
        if !outcome.passed() {
            failed.push(format!(
                "scenario {name} ({}):\n  {}\nlog:\n  {}",
                path.display(),
                outcome.mismatches.join("\n  "),
                outcome.log.join("\n  ")
            ));
        }
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(format!("../../../snapshots/{name}"));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_input_file(path);
        settings.bind(|| {
            for (snapshot, text) in &outcome.snapshots {
                insta::assert_snapshot!(snapshot.as_str(), text);
            }
        });
    });
    // `just test-scenarios <typo>` must not pass having run nothing.
    assert!(
        !ran.is_empty(),
        "no scenario of scenarios/library matches INSTA_GLOB_FILTER={:?}",
        std::env::var("INSTA_GLOB_FILTER").unwrap_or_default()
    );
    eprintln!("ran {} scenario(s): {}", ran.len(), ran.join(", "));
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
