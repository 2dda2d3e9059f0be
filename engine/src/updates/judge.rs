//! The harvest's verdict on one record once Rosetta's side is known: the record Rosetta should
//! hold (three-way or the field policy), and whether that is unchanged, an update or a conflict.
//! Pure, so every rule is tested with data (below); `decide` gathers the inputs (the state
//! store, getMD) and carries the verdict out (the circuit breaker, the package).

use formats::dc::{Comparison, Container, DcRecord};
use formats::identifier::IePid;
use formats::rosetta::UpdateMd;

use crate::config::Conflicts;
use crate::policy::{Policy, dc_diff};
use crate::report::Outcome;
use crate::rosetta_side::{import_dc, import_fingerprint};

/// What the verdict on a record depends on once Rosetta's side is known: gathered by `decide`
/// (the state store, getMD), judged by [`judge`] with no I/O.
pub(crate) struct Judgement<'a> {
    pub policy: &'a Policy,
    pub conflicts: Conflicts,
    pub compare: Comparison,
    /// A base per IE, merged value by value (`threeway`); otherwise the field policy on the
    /// whole record (`replace`, or a transform).
    pub three_way: bool,
    /// Rosetta's side came from getMD (otherwise from the DC mdsync last saw): the reason says.
    pub soap: bool,
    pub pid: &'a IePid,
    /// Alma's record without the round trip's own identifiers.
    pub published: &'a DcRecord,
    /// Those identifiers (kept in Rosetta's record by the field policy).
    pub round_trip: &'a [String],
    /// The values both sides held after the last sync, if there was one.
    pub base: Option<&'a DcRecord>,
    /// The IE as mdsync last saw it: its import fingerprint and DC (the two-way conflict).
    pub seen_fingerprint: Option<&'a str>,
    pub seen_dc: Option<&'a DcRecord>,
    /// The import's projection of the IE's DC needs these.
    pub ie_identifier: &'a str,
    pub mms: Option<&'a str>,
    pub delivery: Option<&'a str>,
}

/// What a record comes to, given Rosetta's current DC.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub outcome: Outcome,
    pub reason: String,
    pub changes: Vec<String>,
    /// The plain difference current → wanted (what a write the breaker refuses reports).
    pub diff: Vec<String>,
    /// The package to write (`true`: parked in `conflicts/`).
    pub package: Option<(UpdateMd, bool)>,
    /// The base once Rosetta holds the result.
    pub base: Option<DcRecord>,
    /// Rosetta's DC before a change (for revert).
    pub previous: Option<String>,
    /// A package still waiting for this IE is stale.
    pub withdraw: bool,
    /// The IE would change: a write the circuit breaker must allow first.
    pub writes: bool,
}

impl Verdict {
    fn new(outcome: Outcome, reason: impl Into<String>) -> Self {
        Verdict {
            outcome,
            reason: reason.into(),
            changes: Vec::new(),
            diff: Vec::new(),
            package: None,
            base: None,
            previous: None,
            withdraw: false,
            writes: false,
        }
    }
}

/// The record Rosetta should hold, and what that means: unchanged, updated, or a conflict
/// (written, skipped or parked per `conflicts`). Pure: everything it needs is in `j`.
pub(crate) fn judge(j: &Judgement<'_>, current: &DcRecord) -> Verdict {
    let refs: Vec<&str> = j.round_trip.iter().map(String::as_str).collect();
    let alma_wins = j.conflicts == Conflicts::Overwrite;
    // With a conflict: both sides' changes since the base, for the report.
    let mut sides: Vec<String> = Vec::new();
    let (wanted, base, three_way_conflicts) = if j.three_way {
        let projected = import_dc(current, j.ie_identifier, j.mms, j.delivery);
        // The stored base as it is; a first sync's is made from both sides.
        let base: std::borrow::Cow<'_, DcRecord> = match j.base {
            Some(b) => std::borrow::Cow::Borrowed(b),
            None => std::borrow::Cow::Owned(crate::threeway::initial_base(&projected, j.published)),
        };
        // Parked conflicts show a person what Alma's side would write: Alma's values win in
        // the parked package (it is never applied by itself).
        let parks = j.conflicts == Conflicts::Park;
        let plan = crate::threeway::harvest_plan(
            &base,
            j.published,
            current,
            |e| j.policy.settable(e),
            alma_wins || parks,
        );
        if !plan.conflicts.is_empty() {
            sides = plan
                .rosetta_changes
                .iter()
                .map(|l| format!("rosetta {l}"))
                .chain(plan.alma_changes.iter().map(|l| format!("alma {l}")))
                .collect();
        }
        (plan.wanted, Some(plan.base), Some(plan.conflicts))
    } else {
        // `replace`, or a transform: the field policy on the record as a whole; the base is what
        // both then hold.
        let wanted = j.policy.apply(j.published, current, &refs);
        let base = crate::threeway::initial_base(&wanted, j.published);
        (wanted, Some(base), None)
    };
    let conflict_note = three_way_conflicts
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| {
            let names: Vec<String> = c.iter().map(|n| format!("dc:{n}")).collect();
            names.join(", ")
        });
    if wanted.same_as(current, j.compare) {
        let mut v = match conflict_note {
            Some(names) => {
                let mut v = Verdict::new(
                    Outcome::Conflict,
                    format!(
                        "{names} changed differently in Rosetta and in Alma since the last sync: \
                         neither side written (conflicts = \"{}\"; resolve it in one system)",
                        j.conflicts.as_str()
                    ),
                );
                v.changes = sides;
                v
            }
            None => Verdict::new(Outcome::Unchanged, "the IE already holds this record"),
        };
        v.withdraw = true;
        v.base = base;
        return v;
    }
    let diff = dc_diff(current, &wanted);
    let mut v = Verdict {
        changes: diff.clone(),
        diff,
        base,
        previous: current.write(Container::DcRecord).ok(),
        writes: true,
        ..Verdict::new(Outcome::Error, "")
    };
    let package = match UpdateMd::descriptive_dc(j.pid.clone(), &wanted) {
        Ok(p) => p,
        Err(e) => {
            v.reason = format!("the package cannot be written: {e}");
            return v;
        }
    };
    // Three-way: a conflict is the same value changed differently on both sides; the rest of
    // the record is merged either way.
    if j.three_way {
        let Some(names) = conflict_note else {
            v.package = Some((package, false));
            v.outcome = Outcome::Updated;
            v.reason = if j.soap {
                "Alma's changes since the last sync, carried value by value (getMD)"
            } else {
                "Alma's changes since the last sync, carried value by value (no SOAP access: \
                 compared with the DC mdsync last saw in Rosetta)"
            }
            .to_owned();
            return v;
        };
        v.changes = sides;
        v.outcome = Outcome::Conflict;
        let (reason, package) = match j.conflicts {
            Conflicts::Overwrite => (
                format!(
                    "{names} changed differently in Rosetta and in Alma since the last sync: \
                     Alma's values overwrite Rosetta's (conflicts = \"overwrite\"); the rest \
                     merged"
                ),
                Some((package, false)),
            ),
            Conflicts::Skip => (
                format!(
                    "{names} changed differently in Rosetta and in Alma since the last sync: \
                     left as they are (conflicts = \"skip\"); the rest merged"
                ),
                Some((package, false)),
            ),
            Conflicts::Park => {
                // Parked for a person: the package is what Alma's side would make of it, and
                // it is not applied, so the base stays.
                v.base = None;
                (
                    format!(
                        "{names} changed differently in Rosetta and in Alma since the last \
                         sync: the package is parked in conflicts/ for review"
                    ),
                    Some((package, true)),
                )
            }
        };
        v.reason = reason;
        v.package = package;
        return v;
    }
    // A conflict: Rosetta's record changed since mdsync last saw it (the import's projection
    // on both sides), and Alma's would overwrite that change.
    let now_fp = import_fingerprint(&import_dc(current, j.ie_identifier, j.mms, j.delivery));
    let changed_in_rosetta = j.seen_fingerprint.is_some_and(|f| f != now_fp);
    if changed_in_rosetta {
        let rosetta_side = j.seen_dc.map(|s| dc_diff(s, current)).unwrap_or_default();
        let mut changes: Vec<String> = rosetta_side
            .into_iter()
            .map(|l| format!("rosetta {l}"))
            .collect();
        changes.extend(v.diff.iter().map(|l| format!("alma {l}")));
        v.changes = changes;
        v.outcome = Outcome::Conflict;
        let (reason, package) = match j.conflicts {
            Conflicts::Overwrite => (
                "the IE changed in Rosetta since mdsync last saw it; Alma's record overwrites it (conflicts = \"overwrite\")",
                Some((package, false)),
            ),
            Conflicts::Skip => (
                "the IE changed in Rosetta since mdsync last saw it; skipped (conflicts = \"skip\")",
                None,
            ),
            Conflicts::Park => (
                "the IE changed in Rosetta since mdsync last saw it; the package is parked in conflicts/ for review",
                Some((package, true)),
            ),
        };
        v.reason = reason.to_owned();
        v.package = package;
        return v;
    }
    v.package = Some((package, false));
    v.outcome = Outcome::Updated;
    v.reason = if j.soap {
        "differs from the IE's DC (getMD)"
    } else {
        "differs from the DC mdsync last saw in Rosetta (no SOAP access)"
    }
    .to_owned();
    v
}

#[cfg(test)]
mod tests {
    use formats::dc::DcElement;

    use super::*;
    use crate::config::FieldPolicy;

    fn dc(values: &[(&str, &str)]) -> DcRecord {
        DcRecord::new(values.iter().map(|(n, v)| DcElement::dc(n, v)).collect())
    }

    fn policy(field_policy: FieldPolicy) -> Policy {
        Policy {
            field_policy,
            only_elements: Vec::new(),
            rosetta_owned: Vec::new(),
        }
    }

    /// One row: the three records, the settings, and what must come of them.
    struct Case {
        name: &'static str,
        base: Option<DcRecord>,
        published: DcRecord,
        current: DcRecord,
        three_way: bool,
        conflicts: Conflicts,
        soap: bool,
        /// The import fingerprint mdsync last saw (two-way only).
        seen: Option<DcRecord>,
        outcome: Outcome,
        reason: &'static str,
        /// `None`: no package; `Some(parked)`.
        package: Option<bool>,
        writes: bool,
    }

    /// Judges the row, checks what it must come to, and hands the verdict back.
    fn check(c: &Case) -> Verdict {
        let pol = policy(if c.three_way {
            FieldPolicy::Merge
        } else {
            FieldPolicy::Replace
        });
        let pid = IePid::new("IE1000").expect("pid");
        let seen_fp = c.seen.as_ref().map(import_fingerprint);
        let v = judge(
            &Judgement {
                policy: &pol,
                conflicts: c.conflicts,
                compare: Comparison::Multiset,
                three_way: c.three_way,
                soap: c.soap,
                pid: &pid,
                published: &c.published,
                round_trip: &[],
                base: c.base.as_ref(),
                seen_fingerprint: seen_fp.as_deref(),
                seen_dc: c.seen.as_ref(),
                ie_identifier: "oai:d4I1-pubam:IE1000",
                mms: None,
                delivery: None,
            },
            &c.current,
        );
        assert_eq!(v.outcome, c.outcome, "{}: {v:?}", c.name);
        assert!(
            v.reason.contains(c.reason),
            "{}: reason {:?} lacks {:?}",
            c.name,
            v.reason,
            c.reason
        );
        assert_eq!(
            v.package.as_ref().map(|(_, parked)| *parked),
            c.package,
            "{}",
            c.name
        );
        assert_eq!(v.writes, c.writes, "{}", c.name);
        // Whatever is written leaves a base (except a parked package) and says what changes.
        if c.writes {
            assert!(v.previous.is_some() && !v.diff.is_empty(), "{}", c.name);
        } else {
            assert!(v.previous.is_none() && v.withdraw, "{}", c.name);
        }
        v
    }

    #[test]
    fn the_harvest_verdict_on_each_combination_of_changes() {
        let a = dc(&[("title", "A"), ("subject", "S")]);
        let alma_title = dc(&[("title", "B"), ("subject", "S")]);
        let rosetta_title = dc(&[("title", "C"), ("subject", "S")]);
        let rosetta_subject = dc(&[("title", "A"), ("subject", "T")]);
        let row = |name,
                   base: Option<&DcRecord>,
                   published: &DcRecord,
                   current: &DcRecord,
                   conflicts,
                   outcome,
                   reason,
                   package,
                   writes| Case {
            name,
            base: base.cloned(),
            published: published.clone(),
            current: current.clone(),
            three_way: true,
            conflicts,
            soap: true,
            seen: None,
            outcome,
            reason,
            package,
            writes,
        };
        use Conflicts::{Overwrite, Park, Skip};
        use Outcome::{Conflict, Unchanged, Updated};
        let cases = [
            row(
                "nothing changed",
                Some(&a),
                &a,
                &a,
                Skip,
                Unchanged,
                "already holds",
                None,
                false,
            ),
            row(
                "no base yet, both agree",
                None,
                &a,
                &a,
                Skip,
                Unchanged,
                "already holds",
                None,
                false,
            ),
            row(
                "Alma changed",
                Some(&a),
                &alma_title,
                &a,
                Skip,
                Updated,
                "value by value (getMD)",
                Some(false),
                true,
            ),
            row(
                "only Rosetta changed",
                Some(&a),
                &a,
                &rosetta_title,
                Skip,
                Unchanged,
                "already holds",
                None,
                false,
            ),
            row(
                "different fields, merged",
                Some(&a),
                &alma_title,
                &rosetta_subject,
                Skip,
                Updated,
                "value by value",
                Some(false),
                true,
            ),
            row(
                "same field, skip",
                Some(&a),
                &alma_title,
                &rosetta_title,
                Skip,
                Conflict,
                "neither side written",
                None,
                false,
            ),
            row(
                "same field, overwrite",
                Some(&a),
                &alma_title,
                &rosetta_title,
                Overwrite,
                Conflict,
                "overwrite Rosetta's",
                Some(false),
                true,
            ),
            row(
                "same field, park",
                Some(&a),
                &alma_title,
                &rosetta_title,
                Park,
                Conflict,
                "parked in conflicts/",
                Some(true),
                true,
            ),
        ];
        for c in &cases {
            check(c);
        }
        // Parked: not applied, so the base stays where it was.
        let v = check(&cases[7]);
        assert!(v.base.is_none(), "{v:?}");
        assert!(v.changes.iter().any(|l| l.starts_with("rosetta ")), "{v:?}");
        assert!(v.changes.iter().any(|l| l.starts_with("alma ")), "{v:?}");
    }

    #[test]
    fn the_whole_record_policy_calls_a_rosetta_change_since_last_seen_a_conflict() {
        let seen = dc(&[("title", "A")]);
        let changed = dc(&[("title", "C")]);
        let alma = dc(&[("title", "B")]);
        let two_way = |name, current: &DcRecord, conflicts, soap, outcome, reason, package| Case {
            name,
            base: None,
            published: alma.clone(),
            current: current.clone(),
            three_way: false,
            conflicts,
            soap,
            seen: Some(seen.clone()),
            outcome,
            reason,
            package,
            writes: true,
        };
        use Conflicts::{Overwrite, Park, Skip};
        for c in [
            two_way(
                "as last seen",
                &seen,
                Skip,
                true,
                Outcome::Updated,
                "(getMD)",
                Some(false),
            ),
            two_way(
                "as last seen, no SOAP",
                &seen,
                Skip,
                false,
                Outcome::Updated,
                "no SOAP access",
                Some(false),
            ),
            two_way(
                "changed, skip",
                &changed,
                Skip,
                true,
                Outcome::Conflict,
                "skipped",
                None,
            ),
            two_way(
                "changed, overwrite",
                &changed,
                Overwrite,
                true,
                Outcome::Conflict,
                "overwrites it",
                Some(false),
            ),
            two_way(
                "changed, park",
                &changed,
                Park,
                true,
                Outcome::Conflict,
                "parked",
                Some(true),
            ),
        ] {
            check(&c);
        }
    }
}
