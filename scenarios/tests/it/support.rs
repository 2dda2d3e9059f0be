//! What every scenario test shares: a config pointing at the mocks, a fresh state store, the
//! clients a separate `mdsync` run would build.

use std::time::Duration;

use engine::alma::AlmaClient;
use engine::config::Config;
use engine::harvest::{HarvestOptions, Harvester, http_client};
use engine::retry::RetryPolicy;
use engine::state::StateStore;
use scenarios::{EngineSite, Mocks, MocksConfig, RosettaState};

pub(crate) fn config(m: &Mocks) -> Config {
    config_with(m, "")
}

pub(crate) fn config_with(m: &Mocks, alma_extra: &str) -> Config {
    let toml = m.engine_config(&EngineSite {
        alma_extra,
        ..EngineSite::default()
    });
    Config::from_toml(&toml, "scenario.toml").expect("valid config")
}

/// One test's scratch directory (state file, update directory), removed when dropped, also
/// when the test fails: nothing is left in the temporary directory, and no two tests (or two
/// cases of one property test) ever share a path.
pub(crate) fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mdsync-test-")
        .tempdir()
        .expect("scratch directory")
}

/// The state file in a scratch directory.
pub(crate) fn state(scratch: &tempfile::TempDir) -> std::path::PathBuf {
    scratch.path().join("state.sqlite")
}

/// Both mocks with `n` generated IEs, a config pointing at them, and a fresh state store in a
/// scratch directory (first, so that it is dropped last).
pub(crate) async fn fixture(n: usize, seed: u64) -> (tempfile::TempDir, Mocks, Config, StateStore) {
    let mocks = Mocks::start(MocksConfig {
        rosetta_store: RosettaState::Generate { n, seed },
        ..MocksConfig::default()
    })
    .await
    .expect("mocks");
    let cfg = config(&mocks);
    let scratch = scratch();
    let store = StateStore::open(&state(&scratch)).expect("state");
    (scratch, mocks, cfg, store)
}

pub(crate) fn clients(cfg: &Config) -> (Harvester, AlmaClient) {
    let retry = RetryPolicy {
        max_attempts: 5,
        base: Duration::from_millis(10),
        cap: Duration::from_millis(200),
    };
    let h = Harvester::new(
        http_client().expect("client"),
        HarvestOptions {
            retry: retry.clone(),
            ..HarvestOptions::default()
        },
    );
    let a = AlmaClient::new(
        http_client().expect("client"),
        &cfg.alma.api_base_url,
        "sandbox-key",
        cfg.alma.max_requests_per_second,
        retry,
    );
    (h, a)
}

/// IEWebServices of the mock, as a run with `rosetta.soap_url` reaches it.
pub(crate) fn soap(m: &Mocks) -> engine::rosetta::RosettaClient {
    engine::rosetta::RosettaClient::new(
        http_client().expect("client"),
        engine::rosetta::RosettaConfig {
            soap_url: m.rosetta.soap_url(),
            user: "mdsync".into(),
            institution: m.rosetta.config().institution.clone(),
            password: m.rosetta.config().password.clone(),
            retry: RetryPolicy {
                max_attempts: 3,
                base: Duration::from_millis(10),
                cap: Duration::from_millis(100),
            },
        },
    )
}
