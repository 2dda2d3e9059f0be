//! SIGINT and SIGTERM: a stage listening finishes its records in flight and stops; otherwise a
//! signal ends the process.

/// The run's stop request (SIGINT, SIGTERM), shared by every stage of the command.
pub(crate) static INTERRUPT: std::sync::LazyLock<engine::stage::Interrupt> =
    std::sync::LazyLock::new(engine::stage::Interrupt::default);
/// A stage is listening: the first signal asks it to stop; otherwise a signal ends the process.
pub(crate) static LISTENING: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);
/// The exit status the signal asks for: 130 (SIGINT) or 143 (SIGTERM); 0 when none came.
pub(crate) static SIGNALLED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// A stage that finishes its records in flight on a signal takes this.
pub(crate) fn listen_for_interrupt() -> engine::stage::Interrupt {
    LISTENING.store(true, std::sync::atomic::Ordering::SeqCst);
    INTERRUPT.clone()
}

/// SIGINT and SIGTERM: the first asks the running stage to finish the records in flight, commit
/// and stop (exit 130 or 143, the report saying `"stopped": "interrupted"`); a second, or one
/// while no stage listens, ends the process at once (the state store is crash-safe).
pub(crate) async fn watch_signals() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    loop {
        let code: u8 = tokio::select! {
            _ = int.recv() => 130,
            _ = term.recv() => 143,
        };
        use std::sync::atomic::Ordering::SeqCst;
        if INTERRUPT.raised() || !LISTENING.load(SeqCst) {
            eprintln!("mdsync: stopped at once");
            std::process::exit(i32::from(code));
        }
        SIGNALLED.store(code, SeqCst);
        INTERRUPT.raise();
        eprintln!(
            "mdsync: interrupted: finishing the records in flight, then stopping (again to stop at once)"
        );
    }
}
