//! raft-kv as a person uses it: help that describes a client and every
//! command, clear errors for bad addresses, waiting for nodes that are
//! still starting, and exit codes that tell success from refusal.

mod process_support;

use process_support::*;
use std::process::{Command, Stdio};
use std::time::Duration;

const KV: &str = env!("CARGO_BIN_EXE_raft-kv");

fn kv(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(KV).args(args).output().expect("run raft-kv");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const COMMANDS: [&str; 10] = [
    "get",
    "put",
    "cas",
    "append",
    "delete",
    "status",
    "transfer-leader",
    "add-voter",
    "add-learner",
    "remove-node",
];

#[test]
fn help_describes_a_client_and_every_command_and_its_arguments() {
    let (code, out, _) = kv(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("client") && !out.contains("server"), "{out}");
    assert!(out.contains("Exit codes"), "{out}");
    for c in COMMANDS {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{c} ")))
            .unwrap_or_else(|| panic!("{c} is not listed:\n{out}"));
        assert!(
            line.split_whitespace().count() > 2,
            "{c} has no help: {line:?}"
        );
        let (code, sub, _) = kv(&[c, "--help"]);
        assert_eq!(code, 0, "{c}");
        for arg in sub.lines().filter(|l| l.trim_start().starts_with('<')) {
            assert!(
                arg.split_whitespace().count() > 1,
                "{c}: argument without help: {arg:?}"
            );
        }
    }
    let (_, cas, _) = kv(&["cas", "--help"]);
    assert!(cas.contains("exit 1"), "{cas}");
}

#[test]
fn bad_node_addresses_get_a_clear_error() {
    let (code, _, err) = kv(&["--node", "nonsense", "get", "k"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("\"nonsense\" is not HOST:PORT"), "{err}");
    let (code, _, err) = kv(&["--node", "no-such-host.invalid:7001", "get", "k"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot resolve the host of no-such-host.invalid:7001"),
        "{err}"
    );
    assert!(!err.contains("dns error"), "{err}");
}

#[test]
fn a_node_that_never_comes_up_fails_after_the_wait_saying_what_it_waited_for() {
    let addr = format!("127.0.0.1:{}", free_port());
    let (code, _, err) = kv(&["--wait-secs", "1", "--node", &addr, "put", "k", "v"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("waiting for {addr}")), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
}

#[test]
fn a_node_still_starting_is_waited_for_and_a_cas_mismatch_exits_1() {
    let addr = format!("127.0.0.1:{}", free_port());
    let d = tempfile::tempdir().unwrap();
    // The client is first: the node starts half a second later.
    let client = Command::new(KV)
        .args([
            "--wait-secs",
            "20",
            "--node",
            &addr,
            "put",
            "greeting",
            "hello",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let _node = Reaped(
        Command::new(NODE)
            .args([
                "--id",
                "1",
                "--listen",
                &addr,
                "--election-timeout-ms",
                "300",
            ])
            .args(["--heartbeat-ms", "50", "--data-dir"])
            .arg(d.path().join("n1"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let out = client.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("waiting for {addr}")), "{err}");
    let with_node = |cmd: &[&str]| kv(&[&["--node", addr.as_str()][..], cmd].concat());
    let (code, out, _) = with_node(&["cas", "greeting", "--expected", "bye", "x"]);
    assert_eq!(code, 1, "a mismatch is not a success: {out}");
    assert!(out.contains("mismatch: the value is hello"), "{out}");
    let (code, out, _) = with_node(&["cas", "greeting", "--expected", "hello", "bonjour"]);
    assert_eq!((code, out.trim()), (0, "ok"));
    let (code, out, _) = with_node(&["get", "greeting"]);
    assert_eq!((code, out.trim()), (0, "bonjour"));
}
