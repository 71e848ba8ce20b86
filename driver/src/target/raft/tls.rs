//! `run --tls`: a throwaway certificate authority per run (rcgen), one
//! certificate per node and one client certificate for the driver, written
//! under the run folder in the layout raft-node's and raft-kv's `--tls-dir`
//! read:
//!
//! ```text
//! RUN/tls/ca.pem                  the run's CA certificate (its key is never written)
//! RUN/tls/nK/{ca,cert,key}.pem    node K: names nK, localhost, 127.0.0.1;
//!                                 server and client authentication
//! RUN/tls/client/{ca,cert,key}.pem  the driver's workload, admin and
//!                                 nemesis calls: names admin, raft-driver
//! ```
//!
//! `raft-kv --tls-dir RUN/tls/client` talks to a run's cluster by hand.
//! The link proxies carry the encrypted bytes unchanged.

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose as Eku, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// The run's TLS folder.
pub fn root(run_dir: &Path) -> PathBuf {
    run_dir.join("tls")
}

/// Node `id`'s `--tls-dir`.
pub fn node_dir(root: &Path, id: u64) -> PathBuf {
    root.join(format!("n{id}"))
}

/// The driver's own `--tls-dir` (also usable with raft-kv).
pub fn client_dir(root: &Path) -> PathBuf {
    root.join("client")
}

fn write_key(path: &Path, pem: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(pem.as_bytes())?;
    Ok(())
}

/// Writes a fresh CA and the certificates of nodes `ids` and the client
/// under `root`.
pub fn generate(root: &Path, ids: &[u64]) -> Result<()> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "raft-driver throwaway CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let issuer = Issuer::from_params(&ca, &ca_key);
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    std::fs::write(root.join("ca.pem"), &ca_pem)?;
    let issue = |dir: PathBuf, names: Vec<String>, ekus: Vec<Eku>| -> Result<()> {
        let mut p = CertificateParams::new(names.clone())?;
        p.distinguished_name
            .push(DnType::CommonName, names[0].as_str());
        p.extended_key_usages = ekus;
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &issuer)?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("ca.pem"), &ca_pem)?;
        std::fs::write(dir.join("cert.pem"), cert.pem())?;
        write_key(&dir.join("key.pem"), &key.serialize_pem())
    };
    for &id in ids {
        issue(
            node_dir(root, id),
            vec![format!("n{id}"), "localhost".into(), "127.0.0.1".into()],
            vec![Eku::ServerAuth, Eku::ClientAuth],
        )?;
    }
    // Named admin: the driver's nemeses make admin and Failpoint calls.
    issue(
        client_dir(root),
        vec!["admin".into(), "raft-driver".into()],
        vec![Eku::ClientAuth],
    )
}

/// tonic's client settings from a `--tls-dir` style folder.
pub fn client_config(dir: &Path) -> Result<ClientTlsConfig> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
    };
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem")?))
        .identity(Identity::from_pem(read("cert.pem")?, read("key.pem")?)))
}

/// Like [`crate::workload::client::open_channels`], over TLS.
pub fn open_channels(
    addrs: &BTreeMap<u64, SocketAddr>,
    tls: &ClientTlsConfig,
) -> Result<BTreeMap<u64, Channel>> {
    let mut out = BTreeMap::new();
    for (&id, addr) in addrs {
        let ch = Endpoint::from_shared(format!("https://{addr}"))?
            .tls_config(tls.clone())?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .connect_lazy();
        out.insert(id, ch);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_gets_a_ca_a_folder_per_node_and_a_client_folder() {
        let d = tempfile::tempdir().unwrap();
        let root = root(d.path());
        generate(&root, &[1, 2, 3]).unwrap();
        assert!(root.join("ca.pem").is_file());
        for dir in [node_dir(&root, 1), node_dir(&root, 3), client_dir(&root)] {
            for f in ["ca.pem", "cert.pem", "key.pem"] {
                assert!(dir.join(f).is_file(), "{}/{f}", dir.display());
            }
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(client_dir(&root).join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "keys are private");
        client_config(&client_dir(&root)).unwrap();
    }
}
