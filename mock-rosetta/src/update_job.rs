//! The Metadata Update Job over the update directory: each updateMD file, in creation order, is
//! applied, ignored (identical) or refused, then moved to `done/` or `error/` (a reason file
//! beside it). A rename is atomic, so a crash never leaves a file in neither place.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use formats::identifier::PidPattern;
use formats::rosetta::UpdateMd;
use serde::Serialize;

use crate::soap::{Applied, apply_update};
use crate::{Inner, UpdateEvent};

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct FileOutcome {
    pub file: String,
    pub pid: Option<String>,
    /// `applied`, `ignored` or `error`
    pub outcome: String,
    pub reason: Option<String>,
}

/// The JSON summary `POST /__admin/update-job/run` returns.
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default, PartialEq, Eq)]
pub struct JobSummary {
    pub processed: usize,
    pub applied: usize,
    pub ignored: usize,
    pub errors: usize,
    pub files: Vec<FileOutcome>,
}

/// The files waiting in `dir`, oldest first (creation time, else modification time, then name).
/// Hidden files and `*.tmp` (a writer's half-written file) are not the job's yet.
pub fn pending(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<(SystemTime, String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !meta.is_file()
            || name.starts_with('.')
            || name.ends_with(".tmp")
            || formats::reason_file::is_reason_file(&name)
        {
            continue;
        }
        let t = meta
            .created()
            .or_else(|_| meta.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        files.push((t, name, entry.path()));
    }
    files.sort();
    Ok(files.into_iter().map(|(_, _, p)| p).collect())
}

fn move_into(file: &Path, dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut target = dir.join(&name);
    let mut n = 1;
    while target.exists() {
        target = dir.join(format!("{name}.{n}"));
        n += 1;
    }
    std::fs::rename(file, &target)?;
    Ok(target)
}

fn write_reason(moved: &Path, reason: &str) -> std::io::Result<()> {
    let name =
        formats::reason_file::ReasonWriter::RosettaJob.file_name(&moved.display().to_string());
    let reason_path = PathBuf::from(&name);
    let tmp = PathBuf::from(format!("{name}.tmp"));
    std::fs::write(&tmp, formats::reason_file::write(reason))?;
    std::fs::rename(tmp, reason_path)
}

/// Runs the job once over `dir`.
/// The lock a processor of the update directory holds (the convention mdsync's apply shares).
pub const JOB_LOCK: &str = ".job.lock";

pub fn run(inner: &Inner, dir: &Path) -> Result<JobSummary, String> {
    let lock = dir.join(JOB_LOCK);
    if let Err(e) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&lock)
        .and_then(|mut f| {
            use std::io::Write;
            writeln!(
                f,
                "pid {} host mock-rosetta since job start (Metadata Update Job)",
                std::process::id()
            )
        })
    {
        let holder = std::fs::read_to_string(&lock).unwrap_or_default();
        return Err(format!(
            "the update directory is locked ({}): {e}",
            holder.trim()
        ));
    }
    let result = run_locked(inner, dir);
    let _ = std::fs::remove_file(&lock);
    result
}

fn run_locked(inner: &Inner, dir: &Path) -> Result<JobSummary, String> {
    let files =
        pending(dir).map_err(|e| format!("cannot read update directory {}: {e}", dir.display()))?;
    let mut summary = JobSummary::default();
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parsed = std::fs::read(&file)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|b| String::from_utf8(b).map_err(|e| format!("not UTF-8: {e}")))
            .and_then(|t| {
                UpdateMd::read(&t, &PidPattern::default())
                    .map_err(|e| format!("malformed updateMD: {e}"))
            });
        let (pid, result) = match parsed {
            Err(reason) => (None, Err(reason)),
            Ok(pkg) => {
                let r = apply_update(
                    inner,
                    pkg.pid.as_str(),
                    &pkg.metadata,
                    &crate::soap::Caller::Job,
                );
                inner.log_update(UpdateEvent::from_result(
                    "job",
                    pkg.pid.as_str(),
                    Some(&name),
                    &r,
                ));
                (
                    Some(pkg.pid.to_string()),
                    r.map_err(|f| format!("{}: {}", f.kind.name(), f.message)),
                )
            }
        };
        let base = dir.to_path_buf();
        let outcome = match &result {
            Ok(Applied::Changed) => "applied",
            Ok(Applied::Identical) => "ignored",
            Err(_) => "error",
        };
        let moved = match &result {
            Ok(_) => move_into(&file, &base.join("done")),
            Err(_) => move_into(&file, &base.join("error")),
        };
        let moved = moved.map_err(|e| format!("cannot move {name}: {e}"))?;
        if let Err(reason) = &result {
            write_reason(&moved, reason)
                .map_err(|e| format!("cannot write the reason for {name}: {e}"))?;
        }
        summary.processed += 1;
        match outcome {
            "applied" => summary.applied += 1,
            "ignored" => summary.ignored += 1,
            _ => summary.errors += 1,
        }
        summary.files.push(FileOutcome {
            file: name,
            pid,
            outcome: outcome.to_owned(),
            reason: result.err(),
        });
    }
    Ok(summary)
}
