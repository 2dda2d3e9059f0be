//! Scenarios: both mocks booted in-process on ephemeral ports, the engine driven against them,
//! outcomes checked (DESIGN §6). The TOML scenario runner, snapshots and `demo` come with the
//! scenarios issue; today this crate holds [`Mocks`] and the end-to-end tests of the engine's
//! pieces that exist (`tests/it/`).
//!
//! # What it must not do
//!
//! Be depended on by the engine or the mocks: it sits above them (ARCHITECTURE.md).

use mock_alma::MockAlma;
use mock_rosetta::MockRosetta;

/// What to boot.
#[derive(Debug, Clone)]
pub struct MocksConfig {
    pub rosetta: mock_rosetta::Config,
    pub rosetta_store: RosettaState,
    pub alma: mock_alma::Config,
    pub alma_generate: usize,
    /// Unix seconds the generated state is stamped with.
    pub now: i64,
}

/// How mock-rosetta's IEs come about.
#[derive(Debug, Clone)]
pub enum RosettaState {
    Generate { n: usize, seed: u64 },
    Section(mock_rosetta::RosettaSection),
}

impl Default for MocksConfig {
    fn default() -> Self {
        MocksConfig {
            rosetta: mock_rosetta::Config::default(),
            rosetta_store: RosettaState::Generate { n: 0, seed: 1 },
            // A scenario lifts Alma's governance unless it is about pacing.
            alma: mock_alma::Config {
                rate_limit: 0,
                ..mock_alma::Config::default()
            },
            alma_generate: 0,
            now: 1_795_000_000,
        }
    }
}

/// Both mocks, running.
pub struct Mocks {
    pub rosetta: MockRosetta,
    pub alma: MockAlma,
}

impl Mocks {
    pub async fn start(c: MocksConfig) -> Result<Mocks, String> {
        let store = match &c.rosetta_store {
            RosettaState::Generate { n, seed } => {
                mock_rosetta::Store::generate(*n, *seed, &c.rosetta.set, c.now)
            }
            RosettaState::Section(s) => mock_rosetta::Store::from_section(s, &c.rosetta.set, c.now)
                .map_err(|e| e.to_string())?,
        };
        let rosetta = MockRosetta::start(c.rosetta, store)
            .await
            .map_err(|e| format!("mock-rosetta: {e}"))?;
        let alma_store = mock_alma::Store::generate(
            c.alma_generate,
            1,
            &c.alma.institution,
            &c.alma.rosetta_delivery_base,
            c.now,
        );
        let alma = MockAlma::start(c.alma, alma_store)
            .await
            .map_err(|e| format!("mock-alma: {e}"))?;
        Ok(Mocks { rosetta, alma })
    }

    /// Stops both, waiting for every task.
    pub async fn shutdown(self) {
        self.rosetta.shutdown().await;
        self.alma.shutdown().await;
    }
}
