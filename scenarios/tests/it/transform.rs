//! The harvest's optional transformation (`[update] transform`, XSLT 1.0 through xsltproc): a
//! stylesheet that drops a field and maps a value, one that makes DC of Alma's MARC21
//! publishing, and one that does not compile. Needs xsltproc: runs under `MDSYNC_INTEROP=1`.

use engine::rosetta::RosettaClient;
use engine::stage::RunOptions;
use engine::state::StateStore;
use formats::dc::{Container, DcElement, DcRecord};
use scenarios::{Mocks, MocksConfig, RosettaState};

use crate::support::{clients, config_with, state};

fn interop() -> bool {
    std::env::var("MDSYNC_INTEROP").is_ok_and(|v| v == "1")
}

fn stylesheet(name: &str) -> String {
    format!("{}/tests/it/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

struct World {
    mocks: Mocks,
    cfg: engine::config::Config,
    store: StateStore,
    soap: RosettaClient,
    dir: std::path::PathBuf,
    /// Dropped last: the state file and the update directory live in it.
    _scratch: tempfile::TempDir,
}

async fn world(extra_alma: &str, transform: &str) -> World {
    let mocks = Mocks::start(MocksConfig {
        rosetta_store: RosettaState::Generate { n: 2, seed: 70 },
        ..MocksConfig::default()
    })
    .await
    .expect("mocks");
    let scratch = crate::support::scratch();
    let dir = scratch.path().join("updates");
    let cfg = config_with(
        &mocks,
        &format!(
            "{extra_alma}\n[update]\nupdate_dir = \"{}\"\ntransform = \"{}\"\n",
            dir.display(),
            stylesheet(transform)
        ),
    );
    let store = StateStore::open(&state(&scratch)).expect("state");
    let soap = crate::support::soap(&mocks);
    World {
        mocks,
        cfg,
        store,
        soap,
        dir,
        _scratch: scratch,
    }
}

impl World {
    async fn put_dc(&self, pid: &str, dc: &DcRecord) {
        self.mocks
            .rosetta
            .admin()
            .put_dc(pid, &dc.write(Container::DcRecord).expect("xml"))
            .await
            .expect("put");
    }

    async fn alma_edit(&self, pid: &str, ops: serde_json::Value) {
        let mms = self
            .store
            .record_by_pid(engine::state::Source::Rosetta, pid)
            .expect("state")
            .and_then(|r| r.mms_id)
            .expect("imported");
        self.mocks
            .alma
            .admin()
            .edit(&mms, &ops)
            .await
            .expect("edit");
    }

    async fn import(&self) {
        let (h, a) = clients(&self.cfg);
        let r = engine::import::import(&self.cfg, &self.store, &h, &a, &RunOptions::default())
            .await
            .expect("import");
        assert_eq!(r.errors(), 0, "{r:#?}");
    }

    /// A harvest of this IE's record alone (the other IE's first transformed harvest would
    /// write a package too: the stylesheet changes what Alma's record says of it).
    async fn harvest(&self, pid: &str) -> engine::report::Report {
        let (h, _) = clients(&self.cfg);
        let opts = RunOptions {
            only: vec![pid.to_owned()],
            ..RunOptions::default()
        };
        engine::updates::harvest(&self.cfg, &self.store, &h, Some(&self.soap), &opts)
            .await
            .expect("harvest")
    }

    /// The one package the harvest wrote, its name's timestamp redacted.
    fn package(&self) -> String {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&self.dir)
            .expect("update dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        assert_eq!(files.len(), 1, "{files:?}");
        std::fs::read_to_string(&files[0]).expect("package")
    }

    async fn shutdown(self) {
        drop(self.store);
        self.mocks.shutdown().await;
    }
}

fn snapshot(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../../snapshots/transform");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stylesheet_drops_a_field_and_maps_a_value_before_the_policy() {
    if !interop() {
        eprintln!("skipped: set MDSYNC_INTEROP=1 (the transform needs xsltproc)");
        return;
    }
    let w = world("", "drop-rights-map-type.xsl").await;
    w.put_dc(
        "IE1000",
        &DcRecord::new(vec![
            DcElement::dc("title", "Irises"),
            DcElement::dc("type", "Image"),
        ]),
    )
    .await;
    w.import().await;
    w.alma_edit(
        "IE1000",
        serde_json::json!([
            {"op": "add_dc", "element": "description", "value": "Painted at Saint-Rémy."},
            {"op": "add_dc", "element": "rights", "value": "Alma's rights statement"}
        ]),
    )
    .await;
    let r = w.harvest("IE1000").await;
    assert_eq!(r.counts.get("updated"), Some(&1), "{r:#?}");
    assert!(r.transform_sha256.as_ref().is_some_and(|s| s.len() == 64));
    let package = w.package();
    assert!(
        package.contains("StillImage") && package.contains("Saint-Rémy"),
        "{package}"
    );
    assert!(!package.contains("Alma's rights statement"), "{package}");
    snapshot("dc_to_dc_package", &package.replace('\r', ""));
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marc21_publishing_becomes_dc_through_a_stylesheet() {
    if !interop() {
        eprintln!("skipped: set MDSYNC_INTEROP=1 (the transform needs xsltproc)");
        return;
    }
    let w = world("oai_metadata_prefix = \"marc21\"", "marc-to-dc.xsl").await;
    w.put_dc(
        "IE1001",
        &DcRecord::new(vec![
            DcElement::dc("title", "Sunflowers"),
            DcElement::dc("creator", "Gogh, Vincent van"),
        ]),
    )
    .await;
    w.import().await;
    w.alma_edit(
        "IE1001",
        serde_json::json!([{"op": "add_field", "field": {"tag": "650", "ind2": "0", "subfields": [["a", "Still life"]]}}]),
    )
    .await;
    let r = w.harvest("IE1001").await;
    assert_eq!(r.counts.get("updated"), Some(&1), "{r:#?}");
    let package = w.package();
    assert!(
        package.contains("Still life") && package.contains("Sunflowers"),
        "{package}"
    );
    snapshot("marc_to_dc_package", &package);
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stylesheet_that_does_not_compile_is_a_configuration_error_at_start() {
    if !interop() {
        eprintln!("skipped: set MDSYNC_INTEROP=1 (the transform needs xsltproc)");
        return;
    }
    let w = world("", "broken.xsl").await;
    let (h, _) = clients(&w.cfg);
    let e = engine::updates::harvest(&w.cfg, &w.store, &h, Some(&w.soap), &RunOptions::default())
        .await
        .expect_err("refused");
    let text = e.to_string();
    assert!(
        matches!(e, engine::stage::StageError::Config(_))
            && text.contains("update.transform")
            && text.contains("does not compile"),
        "{text}"
    );
    w.shutdown().await;
}
