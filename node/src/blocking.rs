//! Blocking calls made from the event loop's task without holding up the
//! tasks that share its worker thread.

/// Runs `f`, which blocks (an fdatasync, a sleep), on the calling thread.
/// On a worker of the multi-threaded runtime it is `block_in_place`: the
/// worker's other tasks (gRPC handlers, peer streams, and the task in its
/// LIFO slot, which no other worker may steal) move to another thread for
/// the length of the call. The event loop calls it for its fsync, so that
/// a node started with `--worker-threads 1` keeps serving its network
/// while the disk works (a plain blocking call there stopped the whole
/// node for every fsync: 2,900 writes/s at 64 clients instead of 14,000).
/// Elsewhere (a current-thread runtime, no runtime: tests) it is `f()`.
pub fn off_worker<T>(f: impl FnOnce() -> T) -> T {
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// With one worker, a task woken while the loop blocks (here: the one
    /// the blocking call waits for) runs during the call, not after it.
    #[test]
    fn a_blocking_call_on_the_only_worker_lets_its_other_tasks_run() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let ran_meanwhile = rt.block_on(async {
            tokio::spawn(async {
                let (tx, rx) = std::sync::mpsc::channel();
                tokio::spawn(async move {
                    let _ = tx.send(());
                });
                off_worker(|| rx.recv_timeout(Duration::from_secs(5)).is_ok())
            })
            .await
            .unwrap()
        });
        assert!(ran_meanwhile);
    }

    #[test]
    fn outside_a_runtime_it_is_a_plain_call() {
        assert_eq!(off_worker(|| 7), 7);
    }
}
