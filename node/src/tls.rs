//! Mutual TLS (`--tls-dir DIR`, issue 16): the node's one port, the client
//! API, the framed peer streams and the snapshot calls all go over TLS, and
//! both ends of every connection show a certificate signed by the
//! cluster's CA.
//!
//! DIR holds three PEM files:
//!
//! - [`CA_FILE`] (`ca.pem`): the cluster's CA certificate(s); the only
//!   roots trusted, for servers and for clients;
//! - [`CERT_FILE`] (`cert.pem`): the holder's certificate (chain), signed
//!   by that CA; a node's must name the host its peers and clients dial
//!   (a DNS or IP subject alternative name, e.g. `127.0.0.1`) and allow
//!   both server and client authentication (a node dials its peers);
//! - [`KEY_FILE`] (`key.pem`): the holder's private key (PKCS#8, PKCS#1 or
//!   SEC1).
//!
//! Who may do what: any CA-signed certificate may use the KV API, open a
//! peer stream and send a snapshot; the admin calls (TransferLeader,
//! AddVoter, AddLearner, RemoveNode) and the Failpoint call also need the
//! client certificate to carry the DNS name [`ADMIN_NAME`] (`admin`) among
//! its subject alternative names. Without `--tls-dir` nothing changes:
//! plaintext, and every call open as before.
//!
//! The peer port tells a peer stream from gRPC by ALPN under TLS: a peer
//! link offers only [`ALPN_PEER`] (`raftmsg1`) and then sends the usual
//! `RAFTMSG1` magic and frames inside the TLS stream; gRPC clients offer
//! `h2`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls::{
    self,
    crypto::{ring, CryptoProvider},
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName},
    server::WebPkiClientVerifier,
    ClientConfig, RootCertStore, ServerConfig,
};

/// The cluster's CA certificate(s), in the TLS dir.
pub const CA_FILE: &str = "ca.pem";
/// The holder's certificate (chain), in the TLS dir.
pub const CERT_FILE: &str = "cert.pem";
/// The holder's private key, in the TLS dir.
pub const KEY_FILE: &str = "key.pem";
/// The DNS subject alternative name a client certificate needs for the
/// admin and Failpoint calls.
pub const ADMIN_NAME: &str = "admin";
/// ALPN protocol of a peer stream inside TLS.
pub const ALPN_PEER: &[u8] = b"raftmsg1";
/// ALPN protocol of gRPC (HTTP/2).
pub const ALPN_H2: &[u8] = b"h2";

/// The crypto provider of every TLS config here (ring: no C toolchain
/// beyond what ring builds with, no aws-lc).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// The contents of a TLS dir, read and parsed.
pub struct TlsFiles {
    dir: PathBuf,
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles").field("dir", &self.dir).finish()
    }
}

impl Clone for TlsFiles {
    fn clone(&self) -> Self {
        TlsFiles {
            dir: self.dir.clone(),
            ca_pem: self.ca_pem.clone(),
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
            roots: Arc::clone(&self.roots),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    let p = dir.join(name);
    std::fs::read(&p).map_err(|e| format!("--tls-dir: cannot read {}: {e}", p.display()))
}

impl TlsFiles {
    /// Reads `ca.pem`, `cert.pem` and `key.pem` from `dir`; the message
    /// names the file that is missing or unusable.
    pub fn load(dir: &Path) -> Result<TlsFiles, String> {
        if !dir.is_dir() {
            return Err(format!("--tls-dir {} is not a directory", dir.display()));
        }
        let (ca_pem, cert_pem, key_pem) = (
            read(dir, CA_FILE)?,
            read(dir, CERT_FILE)?,
            read(dir, KEY_FILE)?,
        );
        let bad = |name: &str, e: &dyn std::fmt::Display| {
            format!("--tls-dir: {}: {e}", dir.join(name).display())
        };
        let ca: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&ca_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| bad(CA_FILE, &e))?;
        if ca.is_empty() {
            return Err(bad(CA_FILE, &"no certificate in it"));
        }
        let mut roots = RootCertStore::empty();
        for c in ca {
            roots.add(c).map_err(|e| bad(CA_FILE, &e))?;
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| bad(CERT_FILE, &e))?;
        if chain.is_empty() {
            return Err(bad(CERT_FILE, &"no certificate in it"));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| bad(KEY_FILE, &e))?;
        let files = TlsFiles {
            dir: dir.to_path_buf(),
            ca_pem,
            cert_pem,
            key_pem,
            roots: Arc::new(roots),
            chain,
            key,
        };
        // Catches a key that does not match the certificate, and the like.
        files.server_config()?;
        Ok(files)
    }

    /// The folder the files came from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The node's server side: its certificate, a client certificate
    /// signed by the CA required, ALPN `h2` (gRPC) and `raftmsg1` (peer
    /// streams).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, String> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&self.roots), provider())
                .build()
                .map_err(|e| format!("--tls-dir: {}: {e}", self.dir.join(CA_FILE).display()))?;
        let mut cfg = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| {
                format!(
                    "--tls-dir: {} and {}: {e}",
                    self.dir.join(CERT_FILE).display(),
                    self.dir.join(KEY_FILE).display()
                )
            })?;
        cfg.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_PEER.to_vec()];
        // Peer links never read: no session tickets to pile up unread.
        cfg.send_tls13_tickets = 0;
        Ok(Arc::new(cfg))
    }

    /// The client side of a peer link: the CA as the only root, this
    /// holder's certificate as the client certificate, ALPN `raftmsg1`.
    pub fn peer_client_config(&self) -> Result<Arc<ClientConfig>, String> {
        let mut cfg = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(Arc::clone(&self.roots))
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| format!("--tls-dir: {e}"))?;
        cfg.alpn_protocols = vec![ALPN_PEER.to_vec()];
        cfg.resumption = rustls::client::Resumption::disabled();
        Ok(Arc::new(cfg))
    }

    /// tonic's client TLS settings (snapshot calls, raft-kv): the CA and
    /// this holder's certificate.
    pub fn tonic_client(&self) -> tonic::transport::ClientTlsConfig {
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&self.ca_pem))
            .identity(tonic::transport::Identity::from_pem(
                &self.cert_pem,
                &self.key_pem,
            ))
    }
}

/// The name a client checks the server's certificate against: the host of
/// `addr` (HOST:PORT), an IP address or a DNS name.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, String> {
    let host = match addr.parse::<std::net::SocketAddr>() {
        Ok(sa) => return Ok(ServerName::IpAddress(sa.ip().into())),
        Err(_) => addr.rsplit_once(':').map_or(addr, |(h, _)| h),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| format!("address {addr:?}: {e}"))
}

/// Whether a client's certificate (the end entity first, as the TLS
/// handshake gave it) may make admin and Failpoint calls: it must name
/// [`ADMIN_NAME`] among its DNS subject alternative names. The chain was
/// verified against the CA by the handshake. The message says why not.
pub fn check_admin(certs: Option<&[CertificateDer<'_>]>) -> Result<(), String> {
    let Some(leaf) = certs.and_then(|c| c.first()) else {
        return Err(
            "admin calls need a client certificate naming \"admin\" (this node runs with --tls-dir)"
                .into(),
        );
    };
    let name = ServerName::try_from(ADMIN_NAME).expect("a valid DNS name");
    let ee = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| format!("admin calls: cannot read the client certificate: {e}"))?;
    ee.verify_is_valid_for_subject_name(&name).map_err(|_| {
        "admin calls need a client certificate whose subject alternative names include the \
         DNS name \"admin\"; this client's certificate does not"
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_host() {
        assert!(matches!(
            server_name("127.0.0.1:7001").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("node-2.local:7002").unwrap(),
            ServerName::DnsName(_)
        ));
    }

    #[test]
    fn a_missing_dir_or_file_is_named() {
        let e = TlsFiles::load(Path::new("/nonexistent/tls")).unwrap_err();
        assert!(e.contains("not a directory"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let e = TlsFiles::load(d.path()).unwrap_err();
        assert!(e.contains("ca.pem"), "{e}");
    }

    #[test]
    fn admin_needs_a_certificate() {
        let e = check_admin(None).unwrap_err();
        assert!(e.contains("admin"), "{e}");
    }
}
