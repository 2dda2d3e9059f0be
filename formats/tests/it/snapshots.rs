//! Snapshots of every writer's output (`snapshots/formats/`), reviewed with `cargo insta review`.

use crate::samples;

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../../../snapshots/formats");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

#[test]
fn oai_pmh_responses() {
    settings().bind(|| {
        for (name, xml) in samples::oai() {
            insta::assert_snapshot!(name, xml);
        }
    });
}

#[test]
fn dc_marc_alma_rosetta_objects() {
    settings().bind(|| {
        for (name, text) in samples::others() {
            insta::assert_snapshot!(name, text);
        }
    });
}
