//! The import's projection and fingerprint, and the seed record's bib and representation.

use super::*;
use formats::dc::DcElement;

fn cfg() -> Config {
    crate::config::seed_config("")
}

#[test]
fn the_quick_fingerprint_is_the_fingerprint_of_the_import_dc() {
    use formats::dc::DcElement;
    let mut records: Vec<DcRecord> = mockdata::ies(300, 5).map(|ie| ie.dc).collect();
    records.push(DcRecord::new(vec![
        DcElement::dc("identifier", " oai:d4I1-pubam:IE1000 "),
        DcElement::dc("identifier", "alma_991234"),
        DcElement::dc("identifier", "https://d/IE1000"),
        DcElement::dcterms("bibliographicCitation", "x").with_lang("en"),
        DcElement::dcterms("notAProperty", "dropped when dumbed down"),
        DcElement::dc("title", "Same").with_type("x:y"),
        DcElement::dc("title", "Same"),
    ]));
    for dc in &records {
        for (mms, delivery) in [(None, None), (Some("991234"), Some("https://d/IE1000"))] {
            assert_eq!(
                import_fingerprint_of(dc, "oai:d4I1-pubam:IE1000", mms, delivery),
                import_fingerprint(&import_dc(dc, "oai:d4I1-pubam:IE1000", mms, delivery)),
                "{dc:?}"
            );
        }
    }
}

#[test]
fn the_seed_record_becomes_this_bib_and_representation() {
    let oai = "oai:d4I1-pubam:IE1000";
    // As Rosetta publishes it after a round trip: Alma's identifiers come back and are dropped.
    let harvested = DcRecord::new(vec![
        DcElement::dc("title", "Sunset at Montmajour"),
        DcElement::dc("creator", "Vincent Willem van Gogh"),
        DcElement::dc(
            "description",
            "Sunset at Montmajour is a landscape in oils...",
        ),
        DcElement::dc("identifier", oai),
        DcElement::dc("identifier", "alma_991000000000013601"),
        DcElement::dc(
            "identifier",
            "https://rosetta.example.edu/delivery/DeliveryManagerServlet?dps_pid=IE1000",
        ),
        DcElement::dc("identifier", "https://example.edu/works/1000"),
    ]);
    let cfg = cfg();
    let dc = import_dc(
        &harvested,
        oai,
        Some("991000000000013601"),
        delivery_url(&cfg, "IE1000").as_deref(),
    );
    assert_eq!(
        dc.values("identifier").collect::<Vec<_>>(),
        ["https://example.edu/works/1000"]
    );
    let pid = IePid::new("IE1000").expect("pid");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../../snapshots/engine");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        insta::assert_snapshot!(
            "import_seed_bib",
            new_bib(&dc, oai).write_xml().expect("xml")
        );
        insta::assert_snapshot!(
            "import_seed_representation",
            representation(&cfg, oai, &pid).write_xml().expect("xml")
        );
    });
}

#[test]
fn a_payload_key_changes_with_every_input_of_the_fingerprint() {
    use formats::oai::{PageReader, PayloadKind};
    let page = |title: &str| {
        format!(
            r#"<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><responseDate>2026-01-01T00:00:00Z</responseDate><request verb="GetRecord">http://x/oai</request><GetRecord><record><header><identifier>oai:d4I1-pubam:IE1000</identifier><datestamp>2026-01-01T00:00:00Z</datestamp></header><metadata><oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></oai_dc:dc></metadata></record></GetRecord></OAI-PMH>"#
        )
    };
    let payload = |title: &str| {
        let xml = page(title);
        let mut r = PageReader::new(xml.as_bytes(), PayloadKind::DcDigested).expect("page");
        match r.next() {
            Some(Ok(Item::Record(rec))) => match rec.metadata {
                Some(Metadata::Digested(d)) => d,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    };
    let (a, b) = (payload("Irises"), payload("Irises."));
    let id = "oai:d4I1-pubam:IE1000";
    let key = import_payload_key(&a, id, Some("991"), Some("https://d/IE1000"));
    assert_eq!(
        key,
        import_payload_key(
            &payload("Irises"),
            id,
            Some("991"),
            Some("https://d/IE1000")
        ),
        "the same bytes in the same context"
    );
    for other in [
        import_payload_key(&b, id, Some("991"), Some("https://d/IE1000")),
        import_payload_key(
            &a,
            "oai:d4I1-pubam:IE1001",
            Some("991"),
            Some("https://d/IE1000"),
        ),
        import_payload_key(&a, id, Some("992"), Some("https://d/IE1000")),
        import_payload_key(&a, id, None, Some("https://d/IE1000")),
        import_payload_key(&a, id, Some(""), Some("https://d/IE1000")),
        import_payload_key(&a, id, Some("991"), None),
        import_payload_key(&a, id, Some("991"), Some("https://e/IE1000")),
    ] {
        assert_ne!(key, other);
    }
}
