//! Mutual TLS (`--tls-dir`, issue 16): a TLS cluster replicates over its
//! TLS peer streams and sends snapshots inside TLS; clients need a
//! certificate from the cluster's CA, admin calls one naming `admin`; a
//! plaintext peer stream is refused.

mod process_support;

use process_support::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose as Eku, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KV: &str = env!("CARGO_BIN_EXE_raft-kv");

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn new_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

/// Writes `dir/{ca.pem,cert.pem,key.pem}`: a certificate for `names`
/// (subject alternative names) signed by `ca`, trusting `ca`.
fn issue(ca: &Ca, dir: &Path, names: &[&str], ekus: Vec<Eku>) -> PathBuf {
    issue_trusting(ca, ca, dir, names, ekus)
}

/// Like [`issue`], but the holder trusts `trusted`'s certificate.
fn issue_trusting(ca: &Ca, trusted: &Ca, dir: &Path, names: &[&str], ekus: Vec<Eku>) -> PathBuf {
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.extended_key_usages = ekus;
    let key = KeyPair::generate().unwrap();
    let cert = params
        .signed_by(&key, &Issuer::from_params(&ca.params, &ca.key))
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("ca.pem"), &trusted.pem).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    dir.to_path_buf()
}

/// A cluster's TLS dirs: one per node, `admin`, `user` (no admin name),
/// and `stranger` (signed by another CA).
struct Pki {
    root: tempfile::TempDir,
}

impl Pki {
    fn new(nodes: u64) -> Pki {
        let root = tempfile::tempdir().unwrap();
        let ca = new_ca("raft test CA");
        for id in 1..=nodes {
            issue(
                &ca,
                &root.path().join(format!("n{id}")),
                &[&format!("n{id}"), "127.0.0.1", "localhost"],
                vec![Eku::ServerAuth, Eku::ClientAuth],
            );
        }
        issue(
            &ca,
            &root.path().join("admin"),
            &["admin"],
            vec![Eku::ClientAuth],
        );
        issue(
            &ca,
            &root.path().join("user"),
            &["user"],
            vec![Eku::ClientAuth],
        );
        let other = new_ca("another CA");
        // It trusts the cluster's CA, but the cluster does not trust it.
        issue_trusting(
            &other,
            &ca,
            &root.path().join("stranger"),
            &["admin"],
            vec![Eku::ClientAuth],
        );
        Pki { root }
    }

    fn dir(&self, who: &str) -> String {
        self.root.path().join(who).display().to_string()
    }
}

fn spawn_node(id: u64, ports: &[u16], data: &Path, tls: &str, extra: &[&str]) -> Reaped {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data.join(format!("n{id}.log")))
        .unwrap();
    let mut cmd = Command::new(NODE);
    cmd.args(["--id", &id.to_string()])
        .args(["--listen", &format!("127.0.0.1:{}", ports[id as usize - 1])])
        .arg("--data-dir")
        .arg(data.join(format!("n{id}")))
        .args(["--election-timeout-ms", "300", "--heartbeat-ms", "50"])
        .args(["--tls-dir", tls])
        .args(extra);
    for (i, p) in ports.iter().enumerate() {
        if i as u64 + 1 != id {
            cmd.args(["--peer", &format!("{}=127.0.0.1:{p}", i + 1)]);
        }
    }
    Reaped(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    )
}

fn kv(tls: Option<&str>, nodes: &[String], cmd: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(KV);
    if !cmd.contains(&"--wait-secs") {
        c.args(["--wait-secs", "10"]);
    }
    if let Some(t) = tls {
        c.args(["--tls-dir", t]);
    }
    for n in nodes {
        c.args(["--node", n]);
    }
    let out = c.args(cmd).output().expect("run raft-kv");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wait_for_log(path: &Path, needle: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} never appeared in {}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_tls_cluster_replicates_sends_snapshots_and_admits_only_ca_clients_and_admin_to_admin_calls() {
    let pki = Pki::new(3);
    let data = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let snap = ["--snapshot-every", "5"];
    // Two of three: every write needs a TLS peer stream to commit.
    let _n1 = spawn_node(1, &ports, data.path(), &pki.dir("n1"), &snap);
    let _n2 = spawn_node(2, &ports, data.path(), &pki.dir("n2"), &snap);
    let user = pki.dir("user");
    for i in 0..12 {
        let (code, out, err) = kv(Some(&user), &addrs[..2], &["put", &format!("k{i}"), "v"]);
        assert_eq!(code, 0, "put over TLS: {out} {err}");
    }
    // The third node is behind a compacted log: it gets a snapshot, a
    // gRPC call on the peer port, inside TLS.
    let _n3 = spawn_node(3, &ports, data.path(), &pki.dir("n3"), &snap);
    wait_for_log(
        &data.path().join("n3.log"),
        "installing snapshot from leader",
    );
    let (code, out, err) = kv(Some(&user), &addrs, &["get", "k11"]);
    assert_eq!((code, out.trim()), (0, "v"), "{err}");

    // No certificate, or one from another CA: refused.
    let (code, _, err) = kv(None, &addrs[..1], &["--wait-secs", "1", "get", "k1"]);
    assert_eq!(code, 1, "a plaintext client must be refused: {err}");
    assert!(err.contains("--tls-dir"), "the error hints at TLS: {err}");
    let (code, _, err) = kv(
        Some(&pki.dir("stranger")),
        &addrs[..1],
        &["--wait-secs", "1", "get", "k1"],
    );
    assert_eq!(code, 1, "a client of another CA must be refused: {err}");
    wait_for_log(&data.path().join("n1.log"), "UnknownIssuer");

    // Admin calls: a CA client without the name admin is told why.
    let (code, _, err) = kv(Some(&user), &addrs, &["transfer-leader", "3"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("DNS name \"admin\""),
        "the refusal says why: {err}"
    );
    let (code, out, err) = kv(Some(&pki.dir("admin")), &addrs, &["transfer-leader", "3"]);
    assert_eq!(code, 0, "admin may transfer: {out} {err}");
}

#[test]
fn a_tls_node_refuses_a_plaintext_peer_stream() {
    let pki = Pki::new(1);
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let _n1 = spawn_node(1, &[port], data.path(), &pki.dir("n1"), &[]);
    let addr = format!("127.0.0.1:{port}");
    // Wait until it serves (over TLS).
    let (code, _, err) = kv(
        Some(&pki.dir("user")),
        std::slice::from_ref(&addr),
        &["put", "a", "1"],
    );
    assert_eq!(code, 0, "{err}");

    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The magic and a frame's length and bytes, as a plaintext peer sends.
    let mut bytes = b"RAFTMSG1".to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 4, 8, 1, 16, 1]);
    s.write_all(&bytes).unwrap();
    let mut buf = [0u8; 256];
    let mut got = Vec::new();
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the node neither answered nor closed the stream: {e}"),
        }
    }
    // At most a TLS alert (content type 21), never anything of the node's.
    assert!(
        got.is_empty() || got[0] == 21,
        "a plaintext peer got {got:?}"
    );
    wait_for_log(&data.path().join("n1.log"), "TLS handshake failed");
}

#[test]
fn a_bad_tls_dir_is_refused_at_start_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(NODE)
        .args(["--id", "1", "--check-config", "--data-dir"])
        .arg(d.path().join("n1"))
        .arg("--tls-dir")
        .arg(d.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("ca.pem"), "{err}");
    let out = Command::new(KV)
        .arg("--tls-dir")
        .arg(d.path())
        .args(["get", "k"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("ca.pem"), "{err}");
}
