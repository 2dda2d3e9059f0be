//! A run stopped by a signal, killed mid-run, or started beside another: nothing lost, nothing
//! done twice.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_records_in_flight_exits_143_and_a_rerun_continues() {
    let (_scratch, mocks, cfg) = setup_with(
        "sigterm",
        60,
        33,
        mock_rosetta::Config {
            page_size: 10,
            ..mock_rosetta::Config::default()
        },
    )
    .await;
    mocks
        .alma
        .faults()
        .add(slow("/almaws/v1/bibs", 20))
        .expect("added");
    let child = start_until(&cfg, &["import", "--report", "json"], async || {
        bib_count(&mocks).await >= 5
    })
    .await;
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().expect("reaped"))
        .await
        .expect("join");
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(r["stopped"], "interrupted", "{r:#}");
    let done = r["counts"]["created"].as_u64().unwrap_or(0);
    assert!(done > 0 && done < 60, "{r:#}");
    // Every record it reported was finished: Alma holds exactly those bibs, the lock is gone.
    assert_eq!(bib_count(&mocks).await as u64, done, "{r:#}");
    mocks.alma.faults().clear();
    let r = json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    assert_eq!(
        r["counts"]["created"].as_u64().unwrap_or(0) + done,
        60,
        "the rerun continues: {r:#}"
    );
    assert_eq!(bib_count(&mocks).await, 60, "every IE once, none twice");
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_mid_harvest_finishes_on_rerun_without_duplicates() {
    let (_scratch, mocks, cfg) = setup_with(
        "kill-import",
        60,
        32,
        mock_rosetta::Config {
            page_size: 10,
            ..mock_rosetta::Config::default()
        },
    )
    .await;
    mocks
        .rosetta
        .faults()
        .add(slow("/oaiprovider", 150))
        .expect("added");
    kill_when(&cfg, &["import"], async || bib_count(&mocks).await >= 15).await;
    mocks.rosetta.faults().clear();
    let r = json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    let created = r["counts"]["created"].as_u64().unwrap_or(0);
    assert!(
        created < 60 && created > 0,
        "the rerun finished the list: {r:#}"
    );
    assert_eq!(bib_count(&mocks).await, 60, "every IE once, none twice");
    let r = json(&mdsync_with(&cfg, &["import", "--full", "--report", "json"]).await);
    assert_eq!(
        (r["counts"]["unchanged"].as_u64(), r["alma_writes"].as_u64()),
        (Some(60), Some(0)),
        "{r:#}"
    );
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_killed_mid_batch_finishes_on_rerun_with_every_package_in_one_place() {
    let (_scratch, mocks, cfg) = setup("kill-apply", 24, 33).await;
    json(&mdsync_with(&cfg, &["import", "--report", "json"]).await);
    let updates = cfg.parent().expect("dir").join("updates");
    std::fs::create_dir_all(&updates).expect("dir");
    // 24 packages, as Rosetta's harvester or an earlier harvest would leave them.
    for i in 0..24 {
        let pid = format!("IE{}", 1000 + i);
        let mut dc = mocks.rosetta.ie(&pid).expect("ie").dc;
        dc.push(formats::dc::DcElement::dc(
            "description",
            &format!("Summary {i}."),
        ));
        let pkg = formats::rosetta::UpdateMd::descriptive_dc(
            formats::identifier::IePid::new(&pid).expect("pid"),
            &dc,
        )
        .expect("package");
        std::fs::write(
            updates.join(format!("Updates_20261128120000_{pid}.xml")),
            pkg.write().expect("xml"),
        )
        .expect("write");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    mocks
        .rosetta
        .faults()
        .add(slow("/dpsws", 100))
        .expect("added");
    let done = updates.join("done");
    kill_when(&cfg, &["apply"], async || {
        std::fs::read_dir(&done)
            .map(|d| d.count() >= 6)
            .unwrap_or(false)
    })
    .await;
    mocks.rosetta.faults().clear();
    let r = json(&mdsync_with(&cfg, &["apply", "--report", "json"]).await);
    let applied = r["counts"]["applied"].as_u64().unwrap_or(0);
    assert!(applied < 24, "the rerun applied the rest: {r:#}");
    let count = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .map(|x| {
                x.filter_map(Result::ok)
                    .filter(|e| e.path().is_file())
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(
        (
            count(&updates),
            count(&updates.join("done")),
            count(&updates.join("error"))
        ),
        (0, 24, 0)
    );
    for i in 0..24 {
        let pid = format!("IE{}", 1000 + i);
        let dc = mocks.rosetta.ie(&pid).expect("ie").dc;
        assert_eq!(
            dc.values("description")
                .filter(|d| *d == format!("Summary {i}."))
                .count(),
            1,
            "{pid}"
        );
    }
    mocks.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_state_is_refused_naming_the_holder() {
    let (_scratch, mocks, cfg) = setup("locked", 2, 4).await;
    let lock = cfg.parent().expect("dir").join("state.sqlite.lock");
    // pid 1 is alive on any Linux machine: a run that really holds the lock.
    std::fs::write(&lock, "pid 1 since 2026-11-28T10:00:00Z\n").expect("lock");
    let out = mdsync_with(&cfg, &["import"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "a held lock is a run that cannot start, not a usage error"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use by another run (pid 1 since 2026-11-28T10:00:00Z)"),
        "{err}"
    );
    std::fs::remove_file(&lock).expect("unlock");
    assert!(mdsync_with(&cfg, &["import"]).await.status.success());
    mocks.shutdown().await;
}
