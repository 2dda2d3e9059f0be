//! The page loop that drives a stage over an OAI-PMH list: the window (Identify once, `from` at
//! the repository's granularity, the overrides), resumption from the checkpoint, the retry set
//! and `--only` passes, bounded concurrency with outcomes recorded in list order, one state
//! transaction and one checkpoint per page, and the window moved only by a complete real run.

use super::*;

/// The retry set's side of a stage (every record whose last outcome is `error` is
/// fetched again by the next run, whatever the window). Each real run records, per record, a
/// failure (the set's count grows) or a success (it leaves the set).
#[derive(Debug)]
pub(crate) struct Retries {
    pub source: crate::state::Source,
    pub max: u32,
    /// The identifiers this run took from the retry set (marked `retried`, and not processed
    /// again when the window brings them too).
    pub taken: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The set held records of this source when the run started (else a success has nothing
    /// to clear: no statement per unchanged record).
    held_any: std::sync::atomic::AtomicBool,
}

impl Retries {
    pub fn new(source: crate::state::Source, max: u32) -> Self {
        Retries {
            source,
            max: max.max(1),
            taken: std::sync::Mutex::new(std::collections::HashSet::new()),
            held_any: std::sync::atomic::AtomicBool::new(true),
        }
    }

    fn taken(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.taken.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Books one recorded outcome (a real run; `run` from the report): an `error` joins the set
    /// (past `max` failed runs its reason says `retries exhausted`), a `stale` plan record stays
    /// as it was, anything else leaves the set.
    pub fn settle(
        &self,
        state: &StateStore,
        run: Option<i64>,
        out: &mut crate::report::RecordOutcome,
    ) -> Result<(), StageError> {
        use crate::report::Outcome;
        out.retried = self.taken().contains(&out.identifier);
        match out.outcome {
            Outcome::Error => {
                let failures =
                    state.retry_failed(self.source, &out.identifier, out.reason.as_deref(), run)?;
                if failures >= self.max {
                    out.reason = Some(format!(
                        "retries exhausted ({failures} failed runs; --retry-all tries it again): {}",
                        out.reason.as_deref().unwrap_or("no reason given")
                    ));
                }
            }
            Outcome::Stale => {}
            _ if self.held_any.load(std::sync::atomic::Ordering::Relaxed) => {
                state.retry_cleared(self.source, &out.identifier)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Marks a record in a dry run (which books nothing).
    pub fn mark(&self, out: &mut crate::report::RecordOutcome) {
        out.retried = self.taken().contains(&out.identifier);
    }
}

/// The `from` to send: the override, else the stored window's (unless `full`), written at the
/// repository's granularity (a day-granular repository refuses seconds).
pub fn window_from(
    stored: Option<&str>,
    opts: &RunOptions,
    granularity: Granularity,
) -> Result<Option<Datestamp>, String> {
    let from = match (opts.from, stored, opts.full) {
        (Some(f), _, _) => Some(f),
        (None, Some(f), false) => {
            Some(Datestamp::parse(f).map_err(|e| format!("stored window: {e}"))?)
        }
        _ => None,
    };
    Ok(from.map(|f| f.with_granularity(granularity)))
}

/// Which list a stage walks.
pub(crate) struct ListSource<'a> {
    /// The state store's name for it (`rosetta`, `alma`).
    pub source: crate::state::Source,
    pub base_url: &'a str,
    pub metadata_prefix: &'a str,
    pub set: Option<&'a str>,
}

/// Walks the list page by page through `stage`.
pub(crate) async fn drive<S: Stage>(
    stage: &S,
    state: &StateStore,
    harvester: &Harvester,
    list: &ListSource<'_>,
    opts: &RunOptions,
    concurrency: usize,
    report: &mut Report,
) -> Result<(), StageError> {
    let window = state.window(list.source)?;
    // Identify once per run: the granularity the window must be written in.
    let granularity = harvester.identify(list.base_url).await?.granularity;
    let from =
        window_from(window.next_from.as_deref(), opts, granularity).map_err(StageError::Config)?;
    let until = opts.until.map(|u| u.with_granularity(granularity));
    let moves_window = opts.from.is_none() && opts.until.is_none() && opts.only.is_empty();
    let resume = if opts.full || opts.dry_run || !moves_window {
        None
    } else {
        window.checkpoint_token.clone()
    };
    let args = ListArgs {
        metadata_prefix: list.metadata_prefix.to_owned(),
        from,
        until,
        set: list.set.map(str::to_owned),
    };
    if !retry_pass(stage, state, harvester, list, opts, report).await? {
        // A record of the retry set stopped the run: the window is not walked.
        return Ok(());
    }
    if !opts.only.is_empty() {
        // The named records, fetched directly whatever the window (which does not move).
        return only_pass(stage, state, harvester, list, opts, report).await;
    }
    let mut cursor = harvester.cursor(list.base_url, &args, false, resume);
    let mut limited = false;
    let mut next = cursor.next_page().await?;
    while let Some(page) = next.take() {
        if opts.interrupt.raised() {
            report.stopped = Some(Interrupt::STOPPED.to_owned());
            break;
        }
        let mut items = page.items;
        {
            // A record of the retry set is processed once per run, even when the window brings
            // it too.
            let taken = stage.retries().taken();
            if !taken.is_empty() {
                items.retain(|i| !taken.contains(&i.header().identifier));
            }
        }
        if !opts.only.is_empty() {
            items.retain(|i| stage.selected(i, &opts.only));
        }
        if let Some(l) = opts.limit {
            let room = l.saturating_sub(report.harvested as usize);
            if items.len() > room {
                items.truncate(room);
                limited = true;
            }
        }
        report.harvested += items.len() as u64;
        if !opts.dry_run {
            state.begin()?;
        }
        // The next page is fetched while this one is processed (one request ahead): the wait
        // for the repository and the work on the records overlap.
        let fetch_next = async {
            if limited {
                Ok(None)
            } else {
                cursor.next_page().await
            }
        };
        // The fetch is polled first, so its request is out before the records take the thread;
        // `process_page` yields now and then, so the answer is read (and handed to a parsing
        // thread) as soon as it arrives, even when no record waits for the network.
        let (fetched, stopped) = tokio::join!(
            fetch_next,
            process_page(stage, report, items, concurrency, &opts.interrupt)
        );
        let stopped = match stopped {
            Ok(s) => s,
            Err(e) => {
                // What was recorded of this page is kept; its checkpoint is not.
                stage.end_page()?;
                state.commit()?;
                return Err(e);
            }
        };
        if let Some(hook) = &opts.progress {
            hook.tell(Progress {
                stage: report.stage,
                done: report.harvested,
                total: page.info.complete_list_size,
            });
        }
        stage.end_page()?;
        if stopped || limited {
            state.commit()?;
            break;
        }
        if !opts.dry_run {
            // A run over an overridden window is not the stored list: it leaves no checkpoint.
            if moves_window {
                state.checkpoint(list.source, page.info.resume_with.as_deref())?;
            }
            state.commit()?;
        }
        // This page is committed: now a failed fetch of the next may end the run.
        next = fetched?;
    }
    if report.stopped.is_none() && !limited {
        let summary = cursor.finish()?;
        report.warnings.extend(summary.warnings);
        if !opts.dry_run
            && moves_window
            && let Some(first) = summary.first_response_date
        {
            // Only a complete run moves the window; the overlap (inclusive `from`) is harmless:
            // the same version of a record (identifier + datestamp) is not processed twice.
            let (end, warning) = window_end(first, now_unix());
            report.warnings.extend(warning);
            state.complete_window(list.source, &end.to_string())?;
        }
    }
    Ok(())
}

/// The retry set, before the window: each record whose last outcome was `error` is fetched
/// alone (GetRecord), processed and recorded, unless it failed in `max_retries` runs already
/// (then only with `--retry-all`). With `--only`, only the selected ones. A record the source no
/// longer has (`idDoesNotExist`) is processed as a deletion, so it leaves the set with the
/// stage's own outcome for a deleted record. `Ok(false)`: a record stopped the run.
pub(crate) async fn retry_pass<S: Stage>(
    stage: &S,
    state: &StateStore,
    harvester: &Harvester,
    list: &ListSource<'_>,
    opts: &RunOptions,
    report: &mut Report,
) -> Result<bool, StageError> {
    let retries = stage.retries();
    let held = state.retries(Some(retries.source), None)?;
    retries
        .held_any
        .store(!held.is_empty(), std::sync::atomic::Ordering::Relaxed);
    // `--limit N` selects the list's first N records: it retries nothing else.
    if opts.limit.is_some() {
        return Ok(true);
    }
    let due: Vec<_> = held
        .into_iter()
        .filter(|r| opts.retry_all || r.failures < retries.max)
        .collect();
    if due.is_empty() {
        return Ok(true);
    }
    if !opts.dry_run {
        state.begin()?;
    }
    let mut stopped = false;
    for (n, row) in due.iter().enumerate() {
        if n > 0 && n % 100 == 0 && !opts.dry_run {
            stage.end_page()?;
            state.commit()?;
            state.begin()?;
        }
        let fetched = harvester
            .get_record(list.base_url, &row.identifier, list.metadata_prefix)
            .await;
        let item = match fetched {
            Ok(Some(item)) => item,
            Ok(None) => Item::Header(formats::oai::Header {
                identifier: row.identifier.clone(),
                datestamp: Datestamp::from_unix(now_unix()),
                set_specs: Vec::new(),
                deleted: true,
            }),
            Err(e) => {
                stage.end_page()?;
                state.commit()?;
                return Err(e.into());
            }
        };
        if !opts.only.is_empty() && !stage.selected(&item, &opts.only) {
            continue;
        }
        retries.taken().insert(row.identifier.clone());
        if !process_one(stage, report, &item).await? {
            stopped = true;
            break;
        }
    }
    stage.end_page()?;
    state.commit()?;
    Ok(!stopped)
}

/// How far ahead of the local clock a provider's clock may be before mdsync distrusts it.
pub const CLOCK_TOLERANCE_SECONDS: i64 = 300;

/// The next window's start from the provider's `responseDate`: never later than the local clock
/// (a provider clock in the future would make every later change invisible until that date),
/// with a warning naming both clocks when it had to be capped.
pub fn window_end(provider: Datestamp, local_unix: i64) -> (Datestamp, Option<String>) {
    if provider.unix() <= local_unix + CLOCK_TOLERANCE_SECONDS {
        return (provider, None);
    }
    let local = Datestamp::from_unix(local_unix);
    (
        local,
        Some(format!(
            "the repository's clock is ahead of this machine's: responseDate {provider}, local \
             time {local}; the next window starts at the local time, not in the future"
        )),
    )
}

/// `--only`: each selector resolved to a record of the list and fetched alone (GetRecord),
/// processed and recorded once; a selector that names nothing is listed in `not_found` (the run
/// then exits 1; it is no record's outcome and never joins the retry set).
pub(crate) async fn only_pass<S: Stage>(
    stage: &S,
    state: &StateStore,
    harvester: &Harvester,
    list: &ListSource<'_>,
    opts: &RunOptions,
    report: &mut Report,
) -> Result<(), StageError> {
    if !opts.dry_run {
        state.begin()?;
    }
    let mut seen: std::collections::HashSet<String> = stage.retries().taken().clone();
    for selector in &opts.only {
        if opts.limit.is_some_and(|l| report.harvested as usize >= l) {
            break;
        }
        let Some(identifier) = stage.resolve(selector.trim()).await? else {
            report.not_found.push(selector.clone());
            continue;
        };
        if !seen.insert(identifier.clone()) {
            continue;
        }
        let item = match harvester
            .get_record(list.base_url, &identifier, list.metadata_prefix)
            .await
        {
            Ok(Some(item)) => item,
            Ok(None) => {
                report.not_found.push(selector.clone());
                continue;
            }
            Err(e) => {
                stage.end_page()?;
                state.commit()?;
                return Err(e.into());
            }
        };
        if !process_one(stage, report, &item).await? {
            break;
        }
    }
    stage.end_page()?;
    state.commit()?;
    Ok(())
}

/// One record fetched alone (retry set, `--only`, a plan): processed and recorded. `Ok(false)`
/// when it stopped the run (the reason is in the report).
pub(crate) async fn process_one<S: Stage>(
    stage: &S,
    report: &mut Report,
    item: &Item,
) -> Result<bool, StageError> {
    report.harvested += 1;
    match stage.process(item).await {
        Ok(d) => {
            stage.record(report, d, item)?;
            Ok(true)
        }
        Err(stop) => {
            let Stop { message, decision } = *stop;
            report.stopped = Some(message);
            stage.record(report, decision, item)?;
            Ok(false)
        }
    }
}

pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs a stage over its list, or over a plan's records when executing one.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn drive_stage<S: Stage>(
    stage: &S,
    state: &StateStore,
    harvester: &Harvester,
    list: &ListSource<'_>,
    opts: &RunOptions,
    concurrency: usize,
    breaker: &Breaker,
    report: &mut Report,
) -> Result<(), StageError> {
    match &opts.plan {
        Some(plan) => drive_plan(stage, state, harvester, list, plan, report, breaker).await,
        None => drive(stage, state, harvester, list, opts, concurrency, report).await,
    }
}

/// Executes a plan: each planned record fetched alone (GetRecord), processed and recorded; one
/// that is no longer published is `stale`. The harvest window is not touched.
pub(crate) async fn drive_plan<S: Stage>(
    stage: &S,
    state: &StateStore,
    harvester: &Harvester,
    list: &ListSource<'_>,
    plan: &Plan,
    report: &mut Report,
    breaker: &Breaker,
) -> Result<(), StageError> {
    if let Err(message) = breaker.check_plan(plan) {
        report.stopped = Some(message);
        return Ok(());
    }
    for (n, (identifier, planned)) in plan.records.iter().enumerate() {
        if n % 100 == 0 {
            state.commit()?;
            state.begin()?;
        }
        let item = harvester
            .get_record(list.base_url, identifier, list.metadata_prefix)
            .await?;
        let Some(item) = item else {
            report.count(crate::report::Outcome::Stale);
            report.records.push(crate::report::RecordOutcome {
                identifier: identifier.clone(),
                ie_pid: None,
                mms_id: None,
                outcome: crate::report::Outcome::Stale,
                reason: Some(format!(
                    "no longer published (the plan says {}): skipped",
                    planned.outcome
                )),
                changes: Vec::new(),
                file: None,
                retried: false,
                re_evaluated: false,
                title: None,
            });
            continue;
        };
        if !process_one(stage, report, &item).await? {
            break;
        }
        stage.end_page()?;
    }
    stage.end_page()?;
    state.commit()?;
    Ok(())
}

/// Processes one page's records (`concurrency` in flight, recorded in list order). `Ok(true)`:
/// a record stopped the run (its reason is in the report). Records already in flight when the
/// stop comes are finished and recorded (their calls were made); records not yet started are not
/// started, get no outcome, and are not counted as harvested (the next run harvests them).
pub(crate) async fn process_page<S: Stage>(
    stage: &S,
    report: &mut Report,
    items: Vec<Item>,
    concurrency: usize,
    interrupt: &Interrupt,
) -> Result<bool, StageError> {
    let stopping = std::sync::atomic::AtomicBool::new(false);
    let stopping = &stopping;
    let mut results = futures_util::stream::iter(items.into_iter().map(|item| async move {
        if stopping.load(std::sync::atomic::Ordering::SeqCst) || interrupt.raised() {
            return (item, None);
        }
        let r = stage.process(&item).await;
        if r.is_err() {
            stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        (item, Some(r))
    }))
    .buffered(concurrency.max(1));
    let mut stopped = false;
    let mut done = 0u32;
    while let Some((item, result)) = results.next().await {
        done += 1;
        if done.is_multiple_of(16) {
            tokio::task::yield_now().await;
        }
        match result {
            None => {
                report.harvested = report.harvested.saturating_sub(1);
                if interrupt.raised() && !stopped {
                    report.stopped = Some(Interrupt::STOPPED.to_owned());
                    stopped = true;
                }
            }
            Some(Ok(d)) => stage.record(report, d, &item)?,
            Some(Err(stop)) => {
                let Stop { message, decision } = *stop;
                if !stopped {
                    report.stopped = Some(message);
                    stopped = true;
                }
                stage.record(report, decision, &item)?;
            }
        }
    }
    Ok(stopped)
}
