//! The reason beside a package in the update directory's `error/`: what went wrong, as one text
//! file named after the package. Two writers, two names, one format: mdsync's apply writes
//! `<package>.error.txt`; Rosetta's Metadata Update Job (and mock-rosetta's) writes
//! `<package>.reason`. Everyone who reads `error/` (apply's read-back, the job itself, the
//! scenario runner) knows both through this module. The text is the reason and a newline.

/// Who wrote a reason file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonWriter {
    /// mdsync's apply (`.error.txt`).
    Mdsync,
    /// Rosetta's Metadata Update Job (`.reason`).
    RosettaJob,
}

impl ReasonWriter {
    pub const ALL: [ReasonWriter; 2] = [ReasonWriter::Mdsync, ReasonWriter::RosettaJob];

    /// The suffix this writer adds to the package's file name.
    pub fn suffix(self) -> &'static str {
        match self {
            ReasonWriter::Mdsync => ".error.txt",
            ReasonWriter::RosettaJob => ".reason",
        }
    }

    /// The reason file's name for a package file name.
    pub fn file_name(self, package: &str) -> String {
        format!("{package}{}", self.suffix())
    }
}

/// Whether a file name is a reason file (not a package).
pub fn is_reason_file(name: &str) -> bool {
    ReasonWriter::ALL.iter().any(|w| name.ends_with(w.suffix()))
}

/// The file names a package's reason may have, in the order to look for them.
pub fn names_for(package: &str) -> [String; 2] {
    ReasonWriter::ALL.map(|w| w.file_name(package))
}

/// A reason file's content.
pub fn write(reason: &str) -> String {
    format!("{}\n", reason.trim_end())
}

/// The reason a file's content says; `None` when it says nothing.
pub fn read(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_writers_names_are_reason_files_and_packages_are_not() {
        let package = "20261207T010000Z_IE1001.xml";
        let names = names_for(package);
        assert_eq!(
            names,
            [
                "20261207T010000Z_IE1001.xml.error.txt",
                "20261207T010000Z_IE1001.xml.reason"
            ]
        );
        assert!(names.iter().all(|n| is_reason_file(n)));
        assert!(!is_reason_file(package));
        assert!(!is_reason_file("20261207T010000Z_IE1001.xml.1"));
    }

    #[test]
    fn the_text_round_trips_and_an_empty_file_says_nothing() {
        assert_eq!(
            read(&write("LockedIeException: IE1001")),
            Some("LockedIeException: IE1001")
        );
        assert_eq!(write("x\n"), "x\n");
        assert_eq!(read(" \n"), None);
    }
}
