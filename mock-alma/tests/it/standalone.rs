//! The standalone server as a service manager runs it: its first line says where it listens,
//! and SIGTERM (systemd's stop) or SIGINT shuts it down cleanly with exit 0.

use std::io::BufRead;

fn stops_cleanly_on(signal: &str) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mock-alma"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("a line");
    assert!(
        first.starts_with("listening on http://127.0.0.1:"),
        "{first}"
    );
    // The rest of what it prints is read, so it never writes into a closed pipe.
    let drain = std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let sent = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = child.wait().expect("reaped");
    let _ = drain.join();
    assert_eq!(status.code(), Some(0), "{signal}: {status:?}");
}

#[test]
fn sigterm_and_sigint_stop_it_with_exit_0() {
    stops_cleanly_on("-TERM");
    stops_cleanly_on("-INT");
}
