//! The harvest stage's unit tests (the whole stage runs against the mocks in `tests/it`).

use super::*;
use crate::policy::dc_diff;
use formats::crosswalk;
use formats::dc::DcElement;

fn cfg() -> Config {
    crate::config::seed_config(
        "[update]
job_name = \"Metadata Updates from Alma\"
",
    )
}

/// The seed's IE as Rosetta holds it: qualified DC.
fn seed_ie() -> DcRecord {
    DcRecord::new(vec![
        DcElement::dc("title", "Sunset at Montmajour"),
        DcElement::dc("creator", "Vincent Willem van Gogh"),
        DcElement::dcterms("created", "1888-07-04").with_type("dcterms:W3CDTF"),
        DcElement::dc("identifier", "https://example.edu/works/1000").with_type("dcterms:URI"),
        DcElement::dcterms("provenance", "Private collection, Norway"),
        DcElement::dcterms("accessRights", "Open access"),
    ])
}

#[test]
fn the_seed_records_round_trip_gives_this_update_md_package() {
    let cfg = cfg();
    let oai = "oai:d4I1-pubam:IE1000";
    let pid = IePid::new("IE1000").expect("pid");
    // What Alma publishes after the import and a cataloguer's 520: MARC → DC plus the three
    // enrichment identifiers, first.
    let mut record = crosswalk::new_marc_record(&seed_ie().dumb_down(), oai);
    record.fields.push(formats::marc::Field::Data(
        formats::marc::DataField::new("520", ' ', ' ')
            .with('a', "Sunset at Montmajour is a landscape in oils..."),
    ));
    let mut published = crosswalk::marc_to_dc(&record);
    for (i, v) in [
        oai.to_owned(),
        "alma_991000000000013601".to_owned(),
        "https://rosetta.example.edu/delivery/DeliveryManagerServlet?dps_pid=IE1000".to_owned(),
    ]
    .into_iter()
    .enumerate()
    {
        published
            .elements
            .insert(i, DcElement::dc("identifier", &v));
    }
    let mms = mms_of("oai:alma.01EXAMPLE_INST:991000000000013601", &published);
    assert_eq!(mms.as_deref(), Some("991000000000013601"));
    let round_trip = round_trip_identifiers(&cfg, &published, &pid, mms.as_deref());
    let policy = Policy {
        rosetta_owned: cfg.update.rosetta_owned.clone(),
        ..Policy::default()
    };
    let refs: Vec<&str> = round_trip.iter().map(String::as_str).collect();
    let wanted = policy.apply(&without(&published, &round_trip), &seed_ie(), &refs);
    assert_eq!(
        dc_diff(&seed_ie(), &wanted),
        [r#"+ dc:description "Sunset at Montmajour is a landscape in oils...""#]
    );
    let package = UpdateMd::descriptive_dc(pid.clone(), &wanted).expect("package");
    let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
    let text = format!(
        "{}\n{}",
        package_name(&cfg.update.job_name, at, &pid),
        package.write().expect("xml")
    );
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../../snapshots/engine");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.add_filter(r"_\d{14}_", "_[yyyyMMddHHmmss]_");
    settings.bind(|| insta::assert_snapshot!("harvest_seed_update_md", text));
}
