//! The workload client protocol: Jepsen's open / invoke / close. Each
//! target brings its own implementation (`target::raft::client`,
//! `target::etcd::client`), which classifies every outcome as ok, fail
//! (certainly not done) or info (may or may not be done).

use crate::workload::op::{Completion, Op};
use anyhow::Result;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// A boxed future, so that traits with async methods stay object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A client of the system under test, one per worker.
pub trait Client: Send {
    /// Executes one operation and says how it ended.
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion>;
    /// Releases what the client holds (connections are shared and lazy, so
    /// the default does nothing).
    fn close(&mut self) {}
}

/// Opens one lazily connected channel per node, shared by all workers.
pub fn open_channels(addrs: &BTreeMap<u64, SocketAddr>) -> Result<BTreeMap<u64, Channel>> {
    let mut out = BTreeMap::new();
    for (&id, addr) in addrs {
        let ch = Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .connect_lazy();
        out.insert(id, ch);
    }
    Ok(out)
}
