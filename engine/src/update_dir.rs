//! The update directory Rosetta's Metadata Update Job reads: updateMD packages named
//! `<job>_<yyyyMMddHHmmss>_<IE PID>.xml`, written to a hidden temporary name and renamed (the job
//! never sees half a file), then moved to `done/` or `error/` (a `<file>.error.txt` reason
//! beside it). Every name is built from a sanitised job name and a pattern-checked IE PID, so no
//! file lands outside the directory.

use formats::reason_file::{self, ReasonWriter};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use formats::identifier::IePid;

#[derive(Debug, thiserror::Error)]
#[error("update directory {path}: {message}")]
pub struct UpdateDirError {
    pub path: String,
    pub message: String,
}

/// Where a package ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Done,
    /// With the reason written beside the file.
    Error(String),
}

/// A package written under its temporary name, waiting for [`UpdateDir::publish`].
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    dir: PathBuf,
}

/// A package waiting in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFile {
    pub name: String,
    pub path: PathBuf,
    /// Its modification time: with the name, its place in creation order.
    pub written: SystemTime,
}

impl PendingFile {
    pub fn key(&self) -> PendingKey {
        PendingKey {
            written: self.written,
            name: self.name.clone(),
        }
    }
}

/// Where a package stands in creation order: its modification time, then its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PendingKey {
    pub written: SystemTime,
    pub name: String,
}

/// One batch of [`UpdateDir::pending_batch`].
#[derive(Debug, Default)]
pub struct PendingBatch {
    /// The next packages, in creation order.
    pub files: Vec<PendingFile>,
    /// Packages waiting in all (before and after the cursor).
    pub total: u64,
    /// The first foreign files by name, and how many there are.
    pub foreign: Vec<String>,
    pub foreign_total: u64,
}

/// Keeps the `max` smallest items in a max-heap.
fn keep_smallest<T: Ord>(heap: &mut std::collections::BinaryHeap<T>, item: T, max: usize) {
    if max == 0 {
        return;
    }
    if heap.len() < max {
        heap.push(item);
    } else if heap.peek().is_some_and(|top| item < *top) {
        heap.pop();
        heap.push(item);
    }
}

/// The lock file a processor of the directory holds while it works (a convention mdsync's apply
/// and mock-rosetta's Metadata Update Job share; a site's own job wrapper can honour it too):
/// `pid <pid> host <host> since <datestamp> (<who>)`.
pub const JOB_LOCK: &str = ".job.lock";

/// Holds [`JOB_LOCK`]; released on drop.
#[derive(Debug)]
pub struct DirLock {
    path: PathBuf,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// The hidden folder of staged (not yet published) packages.
const STAGING: &str = ".mdsync-staging";

#[derive(Debug, Clone)]
pub struct UpdateDir {
    root: PathBuf,
}

/// A job name made safe for a file name: ASCII letters, digits, `-` and `.` kept, anything
/// else (spaces, `/`, `..` runs) becomes `_`, at most 64 characters, never empty or hidden.
pub fn sanitise_job_name(job: &str) -> String {
    let mut out = String::with_capacity(job.len());
    for c in job.chars() {
        let keep = c.is_ascii_alphanumeric() || c == '-' || c == '.';
        let c = if keep { c } else { '_' };
        // No `..` and no runs of `_`: both only make names harder to read.
        if (c == '_' || c == '.') && out.ends_with(['_', '.']) {
            continue;
        }
        out.push(c);
        if out.len() >= 64 {
            break;
        }
    }
    let trimmed = out.trim_matches(['_', '.']);
    if trimmed.is_empty() {
        "mdsync".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// `<job>_<yyyyMMddHHmmss>_<IE PID>.xml`, the time in UTC.
pub fn package_name(job: &str, at: SystemTime, pid: &IePid) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let stamp: String = formats::oai::Datestamp::from_unix(secs)
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    format!("{}_{stamp}_{}.xml", sanitise_job_name(job), pid.as_str())
}

/// The IE PID a package name carries (`<job>_<yyyyMMddHHmmss>_<PID>.xml`), if it is one of ours.
pub fn pid_of(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".xml")?;
    let b = stem.as_bytes();
    (0..b.len().saturating_sub(15)).find_map(|i| {
        let stamp = b.get(i + 1..i + 15)?;
        (b[i] == b'_' && stamp.iter().all(u8::is_ascii_digit) && b.get(i + 15) == Some(&b'_'))
            .then(|| &stem[i + 16..])
            .filter(|p| !p.is_empty())
    })
}

/// True for an updateMD package's name: `<job>_<yyyyMMddHHmmss>_<PID>.xml` with a PID the
/// pattern accepts.
pub fn is_package(name: &str, pattern: &formats::identifier::PidPattern) -> bool {
    pid_of(name).is_some_and(|pid| IePid::with_pattern(pid, pattern).is_ok())
}

/// Directories no update directory may be, whatever a configuration says: apply moves files
/// out of it, and these hold the machine's own.
const REFUSED_DIRS: &[&str] = &[
    "/", "/etc", "/usr", "/bin", "/sbin", "/var", "/tmp", "/home", "/root",
];

/// A path as the file system will see it: `..` and symlinks resolved. For a directory not
/// created yet, its nearest existing ancestor canonicalised, plus the rest.
pub fn resolved(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut out = c;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (
            existing.file_name().map(ToOwned::to_owned),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Why `update_dir` must not be used (`Err` names the problem), or the directory to use: an
/// empty value, or a path that resolves to one of the system's own directories or `$HOME`, is
/// refused (their subdirectories are fine).
pub fn check_update_dir(value: &str, home: Option<&Path>) -> Result<PathBuf, String> {
    if value.trim().is_empty() {
        return Err("is empty: packages would land in the current directory".to_owned());
    }
    let path = resolved(Path::new(value));
    let lexical = normalise(&path);
    let home = home.map(|h| normalise(&resolved(h)));
    let refused = REFUSED_DIRS.iter().any(|d| lexical == Path::new(d))
        || home.as_deref().is_some_and(|h| lexical == h);
    if refused {
        return Err(format!(
            "{value:?} resolves to {}, a directory of the system's own (apply would move its \
             files): use a directory of its own, e.g. /var/lib/rosetta/md_update",
            lexical.display()
        ));
    }
    Ok(path)
}

/// `.` and `..` components removed lexically (after [`resolved`], only what is left of a path
/// that does not exist yet).
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

impl UpdateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        UpdateDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn err(&self, message: impl Into<String>) -> UpdateDirError {
        UpdateDirError {
            path: self.root.display().to_string(),
            message: message.into(),
        }
    }

    /// Creates the directory itself if it is missing, but never its parents (a typo must not
    /// grow a tree at the file system's root). `Ok(true)` when it was created.
    pub fn create_root(&self) -> Result<bool, UpdateDirError> {
        if self.root.is_dir() {
            return Ok(false);
        }
        let parent = self
            .root
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(self.err(format!(
                "does not exist, nor does its parent {}: create it (mdsync creates at most the \
                 last component), or correct update.update_dir",
                parent.display()
            )));
        }
        std::fs::create_dir(&self.root).map_err(|e| self.err(format!("cannot create it: {e}")))?;
        Ok(true)
    }

    fn ensure(&self, dir: &Path) -> Result<(), UpdateDirError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| self.err(format!("cannot create {}: {e}", dir.display())))
    }

    /// Writes a package atomically (temporary hidden name, fsync, rename) into the directory, or
    /// into `sub` (`conflicts`) of it.
    pub fn write(
        &self,
        sub: Option<&str>,
        name: &str,
        contents: &str,
    ) -> Result<PathBuf, UpdateDirError> {
        let staged = self.stage(sub, name, contents)?;
        let path = staged.path.clone();
        self.publish(vec![staged])?;
        Ok(path)
    }

    /// Writes a package under a hidden temporary name, not yet visible to Rosetta's job; a
    /// batch of them is made durable and visible by [`UpdateDir::publish`] (one journal commit
    /// for the batch instead of one per file).
    pub fn stage(
        &self,
        sub: Option<&str>,
        name: &str,
        contents: &str,
    ) -> Result<Staged, UpdateDirError> {
        let dir = match sub {
            Some(s) => self.root.join(s),
            None => self.root.clone(),
        };
        // Temporary files live in their own hidden folder (same file system, so the rename is
        // atomic): Rosetta's job never lists them, and a crashed run's leftovers are found
        // without listing the whole update directory.
        let staging = self.root.join(STAGING);
        if sub.is_some() {
            self.ensure(&dir)?;
        }
        let tmp = staging.join(format!(
            "{}.tmp",
            sub.map_or_else(|| name.to_owned(), |s| format!("{s}_{name}"))
        ));
        let write = |tmp: &Path| std::fs::write(tmp, contents.as_bytes());
        if let Err(e) = write(&tmp) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(self.err(format!("cannot write {name}: {e}")));
            }
            self.ensure(&staging)?;
            self.ensure(&dir)?;
            write(&tmp).map_err(|e| self.err(format!("cannot write {name}: {e}")))?;
        }
        Ok(Staged {
            path: dir.join(name),
            tmp,
            dir,
        })
    }

    /// Makes staged packages durable (fsync each, then rename each into place, then fsync
    /// their directories). The staging folder needs the directory created first. A crash before this leaves only hidden temporary files, which
    /// [`UpdateDir::clear_staged`] removes.
    pub fn publish(&self, staged: Vec<Staged>) -> Result<(), UpdateDirError> {
        if staged.is_empty() {
            return Ok(());
        }
        for s in &staged {
            std::fs::File::open(&s.tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| self.err(format!("cannot sync {}: {e}", s.tmp.display())))?;
        }
        let mut dirs: Vec<&Path> = Vec::new();
        for s in &staged {
            std::fs::rename(&s.tmp, &s.path).map_err(|e| {
                let _ = std::fs::remove_file(&s.tmp);
                self.err(format!("cannot rename {}: {e}", s.tmp.display()))
            })?;
            if !dirs.contains(&s.dir.as_path()) {
                dirs.push(&s.dir);
            }
        }
        for d in dirs {
            // The renames themselves are durable once the directory is.
            if let Ok(f) = std::fs::File::open(d) {
                let _ = f.sync_all();
            }
        }
        Ok(())
    }

    /// Removes the temporary files a crashed run left (never seen by Rosetta's job).
    pub fn clear_staged(&self) -> Result<usize, UpdateDirError> {
        let Ok(entries) = std::fs::read_dir(self.root.join(STAGING)) else {
            return Ok(0);
        };
        Ok(entries
            .flatten()
            .filter(|e| std::fs::remove_file(e.path()).is_ok())
            .count())
    }

    /// True while a package waits in the directory.
    pub fn is_pending(&self, name: &str) -> bool {
        self.root.join(name).is_file()
    }

    /// Takes the directory's job lock, or says who holds it. A lock left by a process of this
    /// host that is gone is taken over.
    pub fn lock(&self, who: &str) -> Result<DirLock, UpdateDirError> {
        self.ensure(&self.root)?;
        let path = self.root.join(JOB_LOCK);
        let host = host_name();
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    let since = crate::state::now_text();
                    let _ = writeln!(
                        f,
                        "pid {} host {host} since {since} ({who})",
                        std::process::id()
                    );
                    return Ok(DirLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let holder = holder.trim();
                    let mut words = holder.split_whitespace();
                    let pid = (words.next() == Some("pid"))
                        .then(|| words.next().and_then(|p| p.parse::<u32>().ok()))
                        .flatten();
                    let same_host =
                        words.next() == Some("host") && words.next() == Some(host.as_str());
                    let gone = pid.is_some_and(|p| {
                        same_host
                            && Path::new("/proc/self").exists()
                            && !Path::new("/proc").join(p.to_string()).exists()
                    });
                    if !gone {
                        return Err(self.err(format!(
                            "another job is processing it ({holder}); try again when it is done, or remove {} if that job is gone",
                            path.display()
                        )));
                    }
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(self.err(format!("cannot create {}: {e}", path.display()))),
            }
        }
        Err(self.err(format!("cannot take {}", path.display())))
    }

    /// Removes a package still waiting (a newer change to its IE replaces it). `false`: it was
    /// no longer there (the job took it).
    pub fn remove_pending(&self, name: &str) -> Result<bool, UpdateDirError> {
        match std::fs::remove_file(self.root.join(name)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.err(format!("cannot remove {name}: {e}"))),
        }
    }

    /// The packages waiting, in creation order (modification time, then name): every
    /// `*_<14 digits>_<PID>.xml` whose PID passes `pattern`, whatever the job prefix. Anything
    /// else is not a package and is never touched: its name comes back in the second list (a
    /// foreign file). Hidden and `*.tmp` files and directories are not listed at all. Holds the
    /// whole listing: for a directory of any size, [`UpdateDir::pending_batch`].
    pub fn pending(
        &self,
        pattern: &formats::identifier::PidPattern,
    ) -> Result<(Vec<PendingFile>, Vec<String>), UpdateDirError> {
        let batch = self.pending_batch(pattern, None, usize::MAX, usize::MAX)?;
        Ok((batch.files, batch.foreign))
    }

    /// The next `max` packages waiting after `after` (in creation order, as [`UpdateDir::pending`]
    /// lists them), with how many wait in all and the first `foreign_max` foreign files (by
    /// name) and how many there are. One pass over the directory holding at most `max` entries:
    /// apply walks a directory of a million packages in batches, its memory bounded.
    pub fn pending_batch(
        &self,
        pattern: &formats::identifier::PidPattern,
        after: Option<&PendingKey>,
        max: usize,
        foreign_max: usize,
    ) -> Result<PendingBatch, UpdateDirError> {
        let mut batch = PendingBatch::default();
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(batch),
            Err(e) => return Err(self.err(format!("cannot list: {e}"))),
        };
        // The `max` smallest keys after `after`: a max-heap whose top is the first to give way.
        let mut next: std::collections::BinaryHeap<PendingKey> =
            std::collections::BinaryHeap::new();
        let mut foreign: std::collections::BinaryHeap<String> = std::collections::BinaryHeap::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.err(format!("cannot list: {e}")))?;
            let name = match entry.file_name().into_string() {
                Ok(n) => n,
                Err(raw) => {
                    keep_smallest(
                        &mut foreign,
                        raw.to_string_lossy().into_owned(),
                        foreign_max,
                    );
                    batch.foreign_total += 1;
                    continue;
                }
            };
            if name.starts_with('.') || name.ends_with(".tmp") {
                continue;
            }
            // The entry's type comes with the listing (a link is not a file here, as before);
            // only a package's time needs a stat.
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            if !is_package(&name, pattern) {
                keep_smallest(&mut foreign, name, foreign_max);
                batch.foreign_total += 1;
                continue;
            }
            batch.total += 1;
            let Ok(meta) = entry.metadata() else { continue };
            let key = PendingKey {
                written: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                name,
            };
            if after.is_some_and(|a| key <= *a) {
                continue;
            }
            keep_smallest(&mut next, key, max);
        }
        batch.files = next
            .into_sorted_vec()
            .into_iter()
            .map(|k| PendingFile {
                path: self.root.join(&k.name),
                name: k.name,
                written: k.written,
            })
            .collect();
        batch.foreign = foreign.into_sorted_vec();
        Ok(batch)
    }

    /// Moves a package to `done/` or `error/` (the reason written first, so a kill in between
    /// leaves the package pending, never reasonless in `error/`). A name already there gets a
    /// numbered suffix. Returns the new path.
    pub fn settle(&self, name: &str, how: &Settled) -> Result<PathBuf, UpdateDirError> {
        let sub = match how {
            Settled::Done => "done",
            Settled::Error(_) => "error",
        };
        let dir = self.root.join(sub);
        self.ensure(&dir)?;
        let mut target = dir.join(name);
        let mut n = 1;
        while target.exists() {
            target = dir.join(format!("{name}.{n}"));
            n += 1;
        }
        if let Settled::Error(reason) = how {
            let reason_name = ReasonWriter::Mdsync
                .file_name(target.file_name().and_then(|n| n.to_str()).unwrap_or(name));
            self.write(Some(sub), &reason_name, &reason_file::write(reason))?;
        }
        std::fs::rename(self.root.join(name), &target)
            .map_err(|e| self.err(format!("cannot move {name} to {sub}/: {e}")))?;
        Ok(target)
    }

    /// Where Rosetta's own job (or an earlier run) put a package: `done/`, or `error/` with its
    /// reason (`<file>.error.txt`, or the `<file>.reason` Rosetta's job writes). `None`: still
    /// pending or gone.
    pub fn find_settled(&self, name: &str) -> Option<Settled> {
        if self.root.join("done").join(name).is_file() {
            return Some(Settled::Done);
        }
        let error = self.root.join("error");
        if error.join(name).is_file() {
            let reason = reason_file::names_for(name)
                .iter()
                .find_map(|r| std::fs::read_to_string(error.join(r)).ok())
                .and_then(|r| reason_file::read(&r).map(str::to_owned))
                .unwrap_or_else(|| "rejected by Rosetta's Metadata Update Job".to_owned());
            return Some(Settled::Error(reason));
        }
        None
    }
}

#[cfg(test)]
mod tests;
