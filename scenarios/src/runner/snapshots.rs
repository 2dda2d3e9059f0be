//! What a scenario leaves for review: the generated records, rendered and redacted.

use super::*;

/// `dc:title = "…"`, `dcterms:created [dcterms:W3CDTF] = "…"`, `dc:title @fr = "…"`.
pub fn dc_line(e: &DcElement) -> String {
    format!("{} = {:?}", e.label(), e.value)
}

/// `520    $a A summary.` per data field.
pub(super) fn marc_lines(xml: &str) -> Vec<String> {
    formats::marc::MarcRecord::read(xml)
        .map(|r| r.data_fields().map(ToString::to_string).collect())
        .unwrap_or_default()
}

/// Generated ids and times out of a snapshot (see [`crate::redact::Redactor::snapshots`]).
pub fn redact(text: &str) -> String {
    crate::redact::Redactor::snapshots().apply(text)
}

impl World {
    /// What the engine generated for these IEs, redacted.
    pub(super) async fn snapshots(&self, ies: &[String]) -> Vec<(String, String)> {
        let mut snaps = Vec::new();
        let updates = PathBuf::from(self.cfg.update.update_dir.clone().unwrap_or_default());
        for pid in ies {
            if let Ok(bib) = self.bib_of(pid).await {
                snaps.push((format!("{pid}.alma_bib"), redact(&bib.marc)));
                snaps.push((
                    format!("{pid}.alma_published_dc"),
                    redact(&bib.published_dc),
                ));
                let reps = serde_json::to_string_pretty(&bib.representations).unwrap_or_default();
                snaps.push((format!("{pid}.alma_representations"), redact(&reps)));
            }
            if let Some(ie) = self.mocks.as_ref().and_then(|m| m.rosetta.ie(pid))
                && let Ok(xml) = ie.dc.write(Container::DcRecord)
            {
                snaps.push((format!("{pid}.rosetta_dc"), xml));
            }
            let mut files: Vec<(String, PathBuf)> = Vec::new();
            for sub in ["done", "error", "conflicts", ""] {
                if let Ok(d) = std::fs::read_dir(updates.join(sub)) {
                    for e in d.flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if name.ends_with(&format!("_{pid}.xml"))
                            || name.contains(&format!("_{pid}.xml."))
                        {
                            if formats::reason_file::is_reason_file(&name) {
                                continue;
                            }
                            files.push((format!("{sub}/{name}"), e.path()));
                        }
                    }
                }
            }
            files.sort();
            for (i, (name, path)) in files.iter().enumerate() {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                snaps.push((
                    format!("{pid}.update_md.{}", i + 1),
                    redact(&format!("{name}\n{text}")),
                ));
            }
        }
        snaps
    }
}
