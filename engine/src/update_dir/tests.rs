//! The update directory: names that never leave it, crash-safe writes, what apply may touch.

use super::*;

#[test]
fn system_directories_and_home_are_refused_as_update_directories() {
    let home = Path::new("/root");
    for bad in [
        "",
        "  ",
        "/",
        "/etc",
        "/etc/",
        "/usr",
        "/var/..",
        "/tmp/../etc",
        "/home",
        "/root",
    ] {
        assert!(check_update_dir(bad, Some(home)).is_err(), "{bad:?}");
    }
    assert!(check_update_dir("/tmp/../root", Some(Path::new("/nonexistent-home"))).is_err());
    for good in [
        "/var/lib/rosetta/md_update",
        "/tmp/mdsync-updates",
        "/operational_shared/md_update/INS01",
    ] {
        assert!(check_update_dir(good, Some(home)).is_ok(), "{good:?}");
    }
    let scratch = tempfile::Builder::new()
        .prefix("mdsync-link-")
        .tempdir()
        .expect("dir");
    let dir = scratch.path().to_path_buf();
    let link = dir.join("etc-link");
    std::os::unix::fs::symlink("/etc", &link).expect("symlink");
    let e =
        check_update_dir(&link.display().to_string(), Some(home)).expect_err("a symlink to /etc");
    assert!(e.contains("/etc"), "{e}");
    assert!(check_update_dir(&link.join("sub").display().to_string(), Some(home)).is_ok());
}

#[test]
fn job_names_become_safe_file_name_parts() {
    for (job, expected) in [
        ("Updates from Alma", "Updates_from_Alma"),
        ("../../etc/passwd", "etc_passwd"),
        ("..", "mdsync"),
        ("", "mdsync"),
        ("a/b\\c\0d", "a_b_c_d"),
        ("Mise à jour", "Mise_jour"),
    ] {
        assert_eq!(sanitise_job_name(job), expected, "{job:?}");
    }
}

#[test]
fn package_names_follow_rosettas_convention() {
    let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
    let pid = IePid::new("IE1000").expect("pid");
    let name = package_name("Updates from Alma", at, &pid);
    assert_eq!(name, "Updates_from_Alma_20261118110640_IE1000.xml");
    assert_eq!(pid_of(&name), Some("IE1000"));
}

proptest::proptest! {
    #[test]
    fn package_names_never_leave_the_update_directory(
        job in ".{0,80}",
        pid in "[A-Za-z0-9_.-]{1,20}|[^/\\\\]{1,20}",
        secs in 0u64..4_000_000_000,
    ) {
        let pattern = formats::identifier::PidPattern::new(".*").expect("regex");
        if let Ok(pid) = IePid::with_pattern(&pid, &pattern) {
            let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            let name = package_name(&job, at, &pid);
            let root = Path::new("/operational_shared/md_update");
            let joined = root.join(&name);
            proptest::prop_assert_eq!(joined.parent(), Some(root), "{}", name);
            proptest::prop_assert!(
                joined.components().all(|c| matches!(c, std::path::Component::RootDir | std::path::Component::Normal(_))),
                "{}", name
            );
            proptest::prop_assert!(!name.starts_with('.') && name.ends_with(".xml"), "{}", name);
            proptest::prop_assert_eq!(pid_of(&name), Some(pid.as_str()));
        }
    }
}

#[test]
fn one_processor_at_a_time_and_a_dead_local_holder_is_taken_over() {
    let scratch = tempfile::Builder::new()
        .prefix("mdsync-ud-lock-")
        .tempdir()
        .expect("dir");
    let dir = scratch.path().to_path_buf();
    let ud = UpdateDir::new(&dir);
    let held = ud.lock("test").expect("free");
    let e = ud.lock("second").expect_err("held");
    assert!(e.to_string().contains("(test)"), "{e}");
    drop(held);
    // Rosetta's job on another host: never taken over.
    std::fs::write(
        dir.join(JOB_LOCK),
        "pid 1 host rosetta-app-01 since 2026-11-28T10:00:00Z (job)\n",
    )
    .expect("write");
    let e = ud.lock("apply").expect_err("foreign");
    assert!(e.to_string().contains("rosetta-app-01"), "{e}");
    // A process of this host that is gone: taken over.
    std::fs::write(
        dir.join(JOB_LOCK),
        format!(
            "pid 4194304000 host {} since 2026-11-28T10:00:00Z (apply)\n",
            host_name()
        ),
    )
    .expect("write");
    if Path::new("/proc/self").exists() {
        drop(ud.lock("apply").expect("taken over"));
    }
}

#[test]
fn write_pending_and_settle_keep_every_file_in_one_place() {
    let scratch = tempfile::Builder::new()
        .prefix("mdsync-ud-")
        .tempdir()
        .expect("dir");
    let dir = scratch.path().to_path_buf();
    let ud = UpdateDir::new(&dir);
    let a = "job_20261201101112_IE1.xml";
    ud.write(None, a, "<a/>").expect("write");
    std::fs::write(dir.join(".b.xml.tmp"), "half").expect("tmp");
    std::fs::write(dir.join("passwd"), "root:x:0:0").expect("foreign");
    std::fs::write(dir.join("job_20261201101112_..xml"), "x").expect("foreign");
    let pattern = formats::identifier::PidPattern::default();
    let (pending, foreign) = ud.pending(&pattern).expect("list");
    assert_eq!(
        pending.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        [a]
    );
    assert_eq!(foreign, ["job_20261201101112_..xml", "passwd"]);
    ud.settle(a, &Settled::Error("bad PID".into()))
        .expect("settle");
    assert_eq!(ud.find_settled(a), Some(Settled::Error("bad PID".into())));
    ud.write(None, a, "<a/>").expect("again");
    let second = ud
        .settle(a, &Settled::Error("again".into()))
        .expect("settle");
    assert!(second.ends_with(format!("error/{a}.1")), "{second:?}");
    assert!(dir.join(format!("error/{a}.1.error.txt")).is_file());
    assert!(ud.pending(&pattern).expect("list").0.is_empty());
    assert!(
        dir.join("passwd").is_file(),
        "a foreign file stays where it is"
    );
}

/// Batches walk the packages in creation order, each once, holding at most the batch: the
/// same order as the whole listing, whatever the batch size; counts and foreign files come
/// with every batch.
#[test]
fn batches_walk_the_packages_in_order_each_once() {
    let scratch = tempfile::tempdir().expect("dir");
    let ud = UpdateDir::new(scratch.path());
    let pattern = formats::identifier::PidPattern::new("^IE[0-9]+$").expect("pattern");
    for i in 0..23 {
        std::fs::write(
            scratch
                .path()
                .join(format!("job_2026120{}0000{i:02}_IE{i}.xml", i % 3)),
            "<x/>",
        )
        .expect("write");
    }
    for f in ["notes.txt", "b.xml", "a.xml"] {
        std::fs::write(scratch.path().join(f), "x").expect("write");
    }
    let (all, foreign) = ud.pending(&pattern).expect("list");
    assert_eq!(all.len(), 23);
    assert_eq!(foreign, ["a.xml", "b.xml", "notes.txt"]);
    for size in [1, 4, 23, 100] {
        let mut walked = Vec::new();
        let mut after = None;
        loop {
            let b = ud
                .pending_batch(&pattern, after.as_ref(), size, 2)
                .expect("batch");
            assert_eq!((b.total, b.foreign_total), (23, 3));
            assert_eq!(b.foreign, ["a.xml", "b.xml"]);
            assert!(b.files.len() <= size);
            let Some(last) = b.files.last() else { break };
            after = Some(last.key());
            walked.extend(b.files.into_iter().map(|f| f.name));
        }
        let names: Vec<String> = all.iter().map(|f| f.name.clone()).collect();
        assert_eq!(walked, names, "batch size {size}");
    }
}
