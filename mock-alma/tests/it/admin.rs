//! The typed admin client (`mock_alma::Admin`) against the admin API: the README's field names
//! (`mms_id`, `suppressed`, `deleted`, `network_numbers`; `marc`, `published_dc`) come through,
//! and each action is seen in the REST API or the publishing.

use crate::support::*;

#[tokio::test]
async fn the_typed_admin_client_reads_and_changes_bibs() {
    let m = start(3).await;
    let admin = m.admin();
    let bibs = admin.bibs().await.expect("bibs");
    assert_eq!(bibs.len(), 3);
    assert!(bibs.iter().all(|b| !b.deleted && !b.suppressed));
    let first = &bibs[0];
    assert!(
        first.network_numbers.iter().any(|n| n.contains("oai:")),
        "{first:?}"
    );
    let pid = first.network_numbers[0]
        .rsplit(':')
        .next()
        .expect("an IE PID")
        .to_owned();
    assert!(first.names_ie(&pid));
    let bib = admin.bib_of(&pid).await.expect("bib_of").expect("a bib");
    assert_eq!(bib.mms_id, first.mms_id);
    assert!(bib.marc.starts_with("<record"), "{}", bib.marc);
    assert!(bib.published_dc.contains("oai_dc"), "{}", bib.published_dc);
    assert!(admin.bib_of("IE0").await.expect("bib_of").is_none());

    let edited = admin
        .edit(
            &bib.mms_id,
            &serde_json::json!([{"op": "add_dc", "element": "description", "value": "Typed."}]),
        )
        .await
        .expect("edit");
    assert!(edited.published_dc.contains("Typed."), "{edited:?}");
    admin.suppress(&bib.mms_id, true).await.expect("suppress");
    admin
        .nz_link(&bib.mms_id, Some("9912345678905501"))
        .await
        .expect("nz link");
    admin.lock(&bib.mms_id, true).await.expect("lock");
    admin.lock(&bib.mms_id, false).await.expect("unlock");
    admin.delete_bib(&bibs[1].mms_id).await.expect("delete");
    let after = admin.bibs().await.expect("bibs");
    assert!(after.iter().any(|b| b.mms_id == bib.mms_id && b.suppressed));
    assert!(
        after
            .iter()
            .any(|b| b.mms_id == bibs[1].mms_id && b.deleted)
    );
    // A refused action names the mock, the call and the answer.
    let e = admin.bib("123").await.expect_err("no such bib");
    assert!(
        e.to_string().contains("alma admin GET bibs/123: 404"),
        "{e}"
    );
}

#[tokio::test]
async fn the_typed_admin_client_drives_faults_journal_and_clock() {
    let m = start(1).await;
    let admin = m.admin();
    let rule: mockkit::FaultRule = serde_json::from_value(serde_json::json!({
        "path_prefix": "/almaws/v1/bibs", "kind": "status", "status": 503, "times": 1
    }))
    .expect("rule");
    admin.add_fault(&rule).await.expect("fault");
    assert_eq!(admin.faults_not_fired().await.expect("report").len(), 1);
    let r = client()
        .get(format!("{}/bibs?mms_id=1&apikey={KEY}", m.api_url()))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 503);
    assert!(admin.faults_not_fired().await.expect("report").is_empty());
    assert_eq!(admin.fault_report().await.expect("report")[0].fired, 1);
    let journal = admin.journal(None).await.expect("journal");
    let last = journal.last().expect("an entry");
    assert_eq!((last.status, last.faults.is_empty()), (503, false));
    assert!(
        admin
            .journal(Some(last.seq))
            .await
            .expect("since")
            .is_empty()
    );
    assert_eq!(
        admin.journal_summary().await.expect("summary").next_seq,
        last.seq + 1
    );
    let before = admin.advance_clock(0).await.expect("clock");
    assert_eq!(admin.advance_clock(60).await.expect("clock"), before + 60);
    admin.clear_faults().await.expect("clear");
    admin.reset().await.expect("reset");
}
