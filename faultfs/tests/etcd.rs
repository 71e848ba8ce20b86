//! etcd on faultfs: a single member whose data dir is on the mount starts
//! (bbolt maps its db file through FUSE), takes writes, and keeps every
//! acknowledged one across a SIGKILL, a power cut and a restart.

mod common;

use common::{free_port, fuse_or_skip, Mount};
use raft_faultfs::CutMode;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// POSTs JSON to etcd's gRPC gateway; the response body on HTTP 200.
fn post(port: u16, path: &str, body: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

struct Etcd {
    child: Child,
    client: u16,
    log: std::path::PathBuf,
}

impl Etcd {
    fn start(data_dir: &Path, client: u16, peer: u16, log: &Path) -> Etcd {
        let c = format!("http://127.0.0.1:{client}");
        let p = format!("http://127.0.0.1:{peer}");
        let child = Command::new("etcd")
            .args(["--name", "n1", "--data-dir"])
            .arg(data_dir)
            .args(["--listen-client-urls", &c, "--advertise-client-urls", &c])
            .args([
                "--listen-peer-urls",
                &p,
                "--initial-advertise-peer-urls",
                &p,
            ])
            .args([
                "--initial-cluster",
                &format!("n1={p}"),
                "--initial-cluster-state",
                "new",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        Etcd {
            child,
            client,
            log: log.to_path_buf(),
        }
    }

    fn put(&self, key: &str, value: &str) -> bool {
        let body = format!(
            r#"{{"key":"{}","value":"{}"}}"#,
            base64(key.as_bytes()),
            base64(value.as_bytes())
        );
        post(self.client, "/v3/kv/put", &body).is_some_and(|b| b.contains("\"revision\""))
    }

    /// The value's base64 as etcd returns it, or None if absent/unreachable.
    fn get_b64(&self, key: &str) -> Option<String> {
        let body = format!(r#"{{"key":"{}"}}"#, base64(key.as_bytes()));
        let resp = post(self.client, "/v3/kv/range", &body)?;
        let v: serde_json::Value = serde_json::from_str(&resp).ok()?;
        v["kvs"][0]["value"].as_str().map(str::to_string)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().unwrap() {
                panic!(
                    "etcd exited ({st}); log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if post(self.client, "/v3/kv/range", r#"{"key":"cHJvYmU="}"#).is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "etcd not ready in 60 s; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn etcd_or_skip() -> bool {
    let found = Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        // As the driver's etcd tests: etcd is optional even under CI.
        eprintln!("etcd: skipped: etcd is not on PATH (apt-get install etcd-server)");
    }
    found
}

#[test]
fn etcd_keeps_every_acknowledged_write_across_a_kill_and_a_power_cut() {
    if !fuse_or_skip("etcd") || !etcd_or_skip() {
        return;
    }
    let m = Mount::new();
    let data = m.m("etcd");
    let log = m.dir.path().join("etcd.log");
    let (client, peer) = (free_port(), free_port());
    let mut etcd = Etcd::start(&data, client, peer, &log);
    etcd.wait_ready();
    let value = |i: usize| format!("value-{i}-{}", "x".repeat(i % 300));
    let acked: Vec<usize> = (0..150)
        .filter(|i| etcd.put(&format!("k{i}"), &value(*i)))
        .collect();
    assert!(
        acked.len() > 100,
        "only {} writes acknowledged",
        acked.len()
    );
    drop(etcd);
    let report = m.fs.power_cut(CutMode::LoseAll).unwrap();

    let mut etcd = Etcd::start(&data, client, peer, &log);
    etcd.wait_ready();
    let lost: Vec<usize> = acked
        .iter()
        .copied()
        .filter(|i| etcd.get_b64(&format!("k{i}")) != Some(base64(value(*i).as_bytes())))
        .collect();
    assert!(
        lost.is_empty(),
        "etcd lost acknowledged writes {lost:?}; cut: {report:?}"
    );
    eprintln!(
        "etcd: {} acknowledged writes all kept; the cut dropped {} unsynced bytes in {} files",
        acked.len(),
        report.bytes_lost,
        report.files.len()
    );
}

#[test]
fn base64_matches_the_standard_alphabet_and_padding() {
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b""), "");
}
