//! Representative values for every writer, shared by the snapshot and schema tests.

use formats::alma::{Bib, List, Representation, WebServiceResult};
use formats::crosswalk;
use formats::dc::{Container, DcElement, DcRecord};
use formats::identifier::{IePid, MmsId};
use formats::marc::{DataField, Field, MarcNs};
use formats::oai::{
    Datestamp, DeletedRecord, ErrorCode, Granularity, Header, Identify, ListArgs, ListRequest,
    MetadataFormat, OaiError, Payload, Request, ResponseWriter, ResumptionToken, SetInfo, Verb,
};
use formats::rosetta::{FaultKind, MetadataItem, SoapFault, SoapRequest, SoapResponse, UpdateMd};

pub const ROSETTA_BASE: &str = "https://rosetta.example.edu/oaiprovider/request";
pub const OAI_ID: &str = "oai:d4I1-pubam:IE1000";
pub const MMS_ID: &str = "991000000000013601";
pub const DELIVERY: &str =
    "https://rosetta.example.edu/delivery/DeliveryManagerServlet?dps_pid=IE1000";

/// The seed document's record as Rosetta holds it (qualified).
pub fn seed_rosetta() -> DcRecord {
    DcRecord::new(vec![
        DcElement::dc("title", "Sunset at Montmajour"),
        DcElement::dc("creator", "Vincent Willem van Gogh"),
        DcElement::dc("identifier", "https://example.edu/works/1000").with_type("dcterms:URI"),
        DcElement::dcterms("created", "1888-07-04").with_type("dcterms:W3CDTF"),
        DcElement::dcterms("isPartOf", "Van Gogh Museum, Amsterdam"),
        DcElement::dcterms("provenance", "Private collection, Norway; identified 2013"),
        DcElement::dcterms("accessRights", "Open access"),
        DcElement::dc("description", "Coucher de soleil à Montmajour").with_lang("fr"),
    ])
}

/// The seed record as Alma publishes it after enrichment: three identifiers added.
pub fn seed_alma() -> DcRecord {
    DcRecord::new(vec![
        DcElement::dc("title", "Sunset at Montmajour"),
        DcElement::dc("creator", "Vincent Willem van Gogh"),
        DcElement::dc(
            "description",
            "Sunset at Montmajour is a landscape in oils...",
        ),
        DcElement::dc("identifier", OAI_ID),
        DcElement::dc("identifier", &format!("alma_{MMS_ID}")),
        DcElement::dc("identifier", DELIVERY),
    ])
}

fn list_request(prefix: &str) -> Request {
    Request::ListRecords(ListRequest::Fresh(ListArgs {
        metadata_prefix: prefix.into(),
        from: Some(Datestamp::parse("2026-01-01T00:00:00Z").expect("valid")),
        until: None,
        set: Some("alma_sync".into()),
    }))
}

fn at() -> Datestamp {
    Datestamp::parse("2026-11-28T12:00:00Z").expect("valid")
}

fn header(pid: &str, deleted: bool) -> Header {
    Header {
        identifier: format!("oai:d4I1-pubam:{pid}"),
        datestamp: Datestamp::parse("2026-11-27T08:30:00Z").expect("valid"),
        set_specs: vec!["alma_sync".into(), "INS01-collections".into()],
        deleted,
    }
}

fn writer(req: Option<&Request>) -> ResponseWriter {
    ResponseWriter::new(at(), ROSETTA_BASE, req).expect("envelope")
}

/// Every OAI-PMH response sample: (name, xml).
pub fn oai() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let identify = |repo: &str| Identify {
        repository_name: "Rosetta (mdsync mock)".into(),
        base_url: ROSETTA_BASE.into(),
        admin_emails: vec!["rosetta-admin@example.edu".into()],
        earliest_datestamp: Datestamp::parse("2020-01-01T00:00:00Z").expect("valid"),
        deleted_record: DeletedRecord::Persistent,
        granularity: Granularity::Second,
        compression: vec![],
        repository_identifier: Some(repo.into()),
        sample_local_identifier: Some("IE1000".into()),
    };
    out.push((
        "oai_identify_real_repository_identifier",
        writer(Some(&Request::Identify))
            .identify(&identify("d4I1-pubam"))
            .expect("w"),
    ));
    out.push((
        "oai_identify_strict_repository_identifier",
        writer(Some(&Request::Identify))
            .identify(&identify("rosetta.example.edu"))
            .expect("w"),
    ));
    out.push((
        "oai_list_metadata_formats",
        writer(Some(&Request::ListMetadataFormats { identifier: None }))
            .list_metadata_formats(&[MetadataFormat::oai_dc(), MetadataFormat::oai_qdc()])
            .expect("w"),
    ));
    out.push((
        "oai_list_sets",
        writer(Some(&Request::ListSets {
            resumption_token: None,
        }))
        .list_sets(
            &[
                SetInfo {
                    spec: "alma_sync".into(),
                    name: "Published to Alma".into(),
                    description: None,
                },
                SetInfo {
                    spec: "INS01-collections".into(),
                    name: "INS01 collections".into(),
                    description: Some("Every collection of institution INS01".into()),
                },
            ],
            None,
        )
        .expect("w"),
    ));
    let seed = seed_rosetta();
    let get = Request::GetRecord {
        identifier: OAI_ID.into(),
        metadata_prefix: "oai_dc".into(),
    };
    out.push((
        "oai_get_record_seed_oai_dc",
        writer(Some(&get))
            .get_record(
                &header("IE1000", false),
                Some(Payload::Dc(&seed, Container::OaiDc)),
            )
            .expect("w"),
    ));
    let req = list_request("oai_dc");
    let mut l = writer(Some(&req)).list(Verb::ListRecords).expect("w");
    l.record(
        &header("IE1000", false),
        Some(Payload::Dc(&seed, Container::OaiDc)),
    )
    .expect("w");
    l.record(&header("IE1001", true), None).expect("w");
    let tricky = DcRecord::new(vec![
        DcElement::dc("title", "Caf\u{e9} & <bar> \"quoted\" 'single' ]]> done"),
        DcElement::dc("description", "line one\r\nline two\ttabbed"),
        DcElement::dc("subject", "Zeichnung \u{2014} \u{1F3A8}"),
    ]);
    l.record(
        &header("IE1002", false),
        Some(Payload::Dc(&tricky, Container::OaiDc)),
    )
    .expect("w");
    let token = ResumptionToken {
        value: "c2V0PWFsbWFfc3luYyZjdXJzb3I9Mw".into(),
        complete_list_size: Some(7),
        cursor: Some(0),
        expiration_date: Some(Datestamp::parse("2026-11-28T13:00:00Z").expect("valid")),
    };
    out.push((
        "oai_list_records_first_page",
        l.finish(Some(&token)).expect("w"),
    ));
    let resume = Request::ListRecords(ListRequest::Resume(token.value.clone()));
    let mut l = writer(Some(&resume)).list(Verb::ListRecords).expect("w");
    l.record(
        &header("IE1006", false),
        Some(Payload::Dc(&seed, Container::OaiDc)),
    )
    .expect("w");
    let last = ResumptionToken {
        value: String::new(),
        complete_list_size: Some(7),
        cursor: Some(6),
        expiration_date: None,
    };
    out.push((
        "oai_list_records_last_page",
        l.finish(Some(&last)).expect("w"),
    ));
    let mut l = writer(Some(&list_request("oai_qdc")))
        .list(Verb::ListRecords)
        .expect("w");
    l.record(
        &header("IE1000", false),
        Some(Payload::Dc(&seed, Container::OaiQdc)),
    )
    .expect("w");
    out.push(("oai_list_records_oai_qdc", l.finish(None).expect("w")));
    let marc = crosswalk::new_marc_record(&seed_alma(), OAI_ID);
    let mut l = writer(Some(&list_request("marc21")))
        .list(Verb::ListRecords)
        .expect("w");
    l.record(&header("IE1000", false), Some(Payload::Marc(&marc)))
        .expect("w");
    out.push(("oai_list_records_marc21", l.finish(None).expect("w")));
    let li = Request::ListIdentifiers(ListRequest::Fresh(ListArgs {
        metadata_prefix: "oai_dc".into(),
        from: None,
        until: None,
        set: None,
    }));
    let mut l = writer(Some(&li)).list(Verb::ListIdentifiers).expect("w");
    l.header(&header("IE1000", false)).expect("w");
    l.header(&header("IE1001", true)).expect("w");
    out.push(("oai_list_identifiers", l.finish(None).expect("w")));
    out.push((
        "oai_error_bad_verb",
        writer(None)
            .errors(&[OaiError::new(
                ErrorCode::BadVerb,
                "\"Harvest\" is not an OAI-PMH verb",
            )])
            .expect("w"),
    ));
    out.push((
        "oai_error_no_records_match",
        writer(Some(&list_request("oai_dc")))
            .errors(&[OaiError::new(
                ErrorCode::NoRecordsMatch,
                "no IE in set alma_sync changed in this window",
            )])
            .expect("w"),
    ));
    out.push((
        "oai_error_id_does_not_exist",
        writer(Some(&get))
            .errors(&[OaiError::new(
                ErrorCode::IdDoesNotExist,
                "oai:d4I1-pubam:IE1000 is in no published set",
            )])
            .expect("w"),
    ));
    out
}

/// Every other writer's sample: (name, text).
pub fn others() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let seed = seed_rosetta();
    out.push((
        "dc_record_seed",
        seed.write(Container::DcRecord).expect("w"),
    ));
    out.push(("dc_oai_dc_seed", seed.write(Container::OaiDc).expect("w")));
    out.push(("dc_oai_qdc_seed", seed.write(Container::OaiQdc).expect("w")));
    let mut marc = crosswalk::new_marc_record(&seed, OAI_ID);
    out.push((
        "marc_seed_crosswalked_slim",
        marc.write(MarcNs::Slim).expect("w"),
    ));
    marc.set_control("001", MMS_ID);
    marc.set_control("005", "20261128120000.0");
    marc.fields.push(Field::Data(
        DataField::new("650", ' ', '0')
            .with('a', "Landscape painting, Dutch")
            .with('y', "19th century."),
    ));
    let bib = Bib {
        mms_id: Some(MmsId::new(MMS_ID).expect("valid")),
        record_format: "marc21".into(),
        nz_mms_id: None,
        title: Some("Sunset at Montmajour".into()),
        author: Some("Vincent Willem van Gogh".into()),
        network_numbers: vec![OAI_ID.into()],
        created_date: Some("2026-11-28Z".into()),
        last_modified_date: Some("2026-11-28Z".into()),
        suppress_from_publishing: false,
        originating_system: Some("ROSETTA-OAIDC01".into()),
        originating_system_id: Some(OAI_ID.into()),
        record: marc,
    };
    out.push(("alma_bib_seed_xml", bib.write_xml().expect("w")));
    out.push(("alma_bib_seed_json", pretty(&bib.to_json().expect("w"))));
    out.push((
        "alma_bibs_xml",
        List {
            total_record_count: 1,
            items: vec![bib],
        }
        .write_xml()
        .expect("w"),
    ));
    let rep = Representation {
        id: Some("12345678900003601".into()),
        is_remote: true,
        library: Some("MAIN".into()),
        usage_type: Some("PRESERVATION_MASTER".into()),
        label: Some("Sunset at Montmajour".into()),
        delivery_url: Some(DELIVERY.into()),
        thumbnail_url: Some(format!("{DELIVERY}&dps_func=thumbnail")),
        repository: Some("ROSETTA-OAIDC01".into()),
        originating_record_id: Some(OAI_ID.into()),
        linking_parameter_1: Some("IE1000".into()),
        ..Representation::default()
    };
    out.push(("alma_representation_xml", rep.write_xml().expect("w")));
    out.push(("alma_representation_json", pretty(&rep.to_json())));
    let reps = List {
        total_record_count: 1,
        items: vec![rep],
    };
    out.push(("alma_representations_xml", reps.write_xml().expect("w")));
    out.push((
        "alma_representations_json",
        pretty(&reps.to_json().expect("w")),
    ));
    let err = WebServiceResult::one(
        "402203",
        "Input parameters mmsId 991 is not valid.",
        Some("E01-2811120000-ABCDE"),
    );
    out.push(("alma_web_service_result_xml", err.write_xml().expect("w")));
    out.push(("alma_web_service_result_json", pretty(&err.to_json())));
    let pid = IePid::new("IE1000").expect("valid");
    let pkg = UpdateMd::descriptive_dc(pid.clone(), &seed_alma()).expect("w");
    out.push(("update_md_seed", pkg.write().expect("w")));
    let cdata = DcRecord::new(vec![DcElement::dc(
        "description",
        "Markup in text: <![CDATA[ x ]]> stays text",
    )]);
    out.push((
        "update_md_content_holding_cdata_end",
        UpdateMd::descriptive_dc(pid, &cdata)
            .expect("w")
            .write()
            .expect("w"),
    ));
    let item = MetadataItem::descriptive_dc(&seed_alma()).expect("w");
    out.push((
        "soap_get_md_request",
        SoapRequest::GetMd {
            pds_handle: String::new(),
            pid: "IE1000".into(),
            mid: None,
            kind: Some("descriptive".into()),
            sub_type: Some("dc".into()),
        }
        .write()
        .expect("w"),
    ));
    out.push((
        "soap_update_md_request",
        SoapRequest::UpdateMd {
            pds_handle: String::new(),
            pid: "IE1000".into(),
            commit: Some(true),
            metadata: vec![item.clone()],
        }
        .write()
        .expect("w"),
    ));
    out.push((
        "soap_get_ie_request",
        SoapRequest::GetIe {
            pds_handle: String::new(),
            ie_pid: "IE1000".into(),
            flags: Some("0".into()),
        }
        .write()
        .expect("w"),
    ));
    out.push((
        "soap_get_md_response",
        SoapResponse::GetMd(formats::rosetta::mets_with_dc(&seed_alma()).expect("mets"))
            .write()
            .expect("w"),
    ));
    out.push((
        "soap_update_md_response",
        SoapResponse::UpdateMd.write().expect("w"),
    ));
    out.push((
        "soap_fault_locked_ie",
        SoapResponse::Fault(SoapFault {
            locked_by: Some("curator1".into()),
            life_cycle: Some("ACTIVE".into()),
            ..SoapFault::new(
                "soap:Server",
                "IE IE1000 is locked by another process",
                Some(FaultKind::LockedIe),
            )
        })
        .write()
        .expect("w"),
    ));
    out
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).expect("JSON values serialise")
}
