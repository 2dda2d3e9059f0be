//! The standalone server as a service manager runs it: its first line says where it listens,
//! and SIGTERM (systemd's stop) or SIGINT shuts it down cleanly with exit 0.

#[test]
fn sigterm_and_sigint_stop_it_with_exit_0() {
    for signal in ["-TERM", "-INT"] {
        let status = mockkit::run_standalone_until(env!("CARGO_BIN_EXE_mock-rosetta"), signal);
        assert_eq!(status.code(), Some(0), "{signal}: {status:?}");
    }
}
