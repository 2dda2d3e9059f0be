//! The typed admin client (`mock_rosetta::Admin`) against the admin API: the README's field
//! names (`pid`, `datestamp`, `deleted`, `locked`; `dc`) come through, and each action is seen
//! where Rosetta shows it.

use crate::support::*;

#[tokio::test]
async fn the_typed_admin_client_reads_and_changes_ies() {
    let m = start(3, 10).await;
    let admin = m.admin();
    let ies = admin.ies().await.expect("ies");
    assert_eq!(ies.len(), 3);
    let pid = ies[0].pid.clone();
    assert!(ies[0].datestamp.ends_with('Z'), "{:?}", ies[0]);
    let ie = admin.ie(&pid).await.expect("ie");
    assert!(ie.dc.contains("<dc:record"), "{}", ie.dc);
    assert!(ie.oai_identifier.ends_with(&format!(":{pid}")));

    admin
        .put_dc(&pid, "<dc:title>Typed title</dc:title>")
        .await
        .expect("put");
    assert!(admin.ie(&pid).await.expect("ie").dc.contains("Typed title"));
    admin.lock(&pid, true).await.expect("lock");
    assert!(admin.ie(&pid).await.expect("ie").locked);
    admin.lock(&pid, false).await.expect("unlock");
    admin
        .put_ie(
            "IE7777",
            &mock_rosetta::IeEdit {
                dc: Some("<dc:title>New</dc:title>".to_owned()),
                sets: Some(vec!["alma_sync".to_owned()]),
                ..mock_rosetta::IeEdit::default()
            },
        )
        .await
        .expect("new IE");
    admin.delete_ie(&ies[1].pid).await.expect("delete");
    let after = admin.ies().await.expect("ies");
    assert!(after.iter().any(|i| i.pid == "IE7777" && !i.deleted));
    assert!(after.iter().any(|i| i.pid == ies[1].pid && i.deleted));
    assert!(admin.updates().await.expect("updates").is_empty());
    let e = admin.ie("IE0").await.expect_err("no such IE");
    assert!(
        e.to_string().contains("rosetta admin GET ies/IE0: 404"),
        "{e}"
    );
}
