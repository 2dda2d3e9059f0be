//! Every scenario of `library/`, each checked against its own expectations and the convergence
//! invariant, with snapshots of what the engine generated under `snapshots/<scenario>/`.
//! `INSTA_GLOB_FILTER=seed-round-trip.toml` (or `just test-scenarios seed-round-trip`) runs one.

use scenarios::runner::{Target, run};
use scenarios::scenario::Scenario;

#[test]
fn the_scenario_library() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    insta::glob!("../../library", "*.toml", |path| {
        let scenario = Scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
        let work = std::env::temp_dir().join(format!(
            "mdsync-scenario-{}-{}",
            scenario.scenario.name,
            std::process::id()
        ));
        let outcome = rt
            .block_on(run(&scenario, Target::Mocks, &work))
            .unwrap_or_else(|e| panic!("{}: {e}", scenario.scenario.name));
        assert!(
            outcome.passed(),
            "scenario {} ({}):\n  {}\nlog:\n  {}",
            scenario.scenario.name,
            path.display(),
            outcome.mismatches.join("\n  "),
            outcome.log.join("\n  ")
        );
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(format!("../../../snapshots/{}", scenario.scenario.name));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_input_file(path);
        settings.bind(|| {
            for (name, text) in &outcome.snapshots {
                insta::assert_snapshot!(name.as_str(), text);
            }
        });
        let _ = std::fs::remove_dir_all(&work);
    });
}
