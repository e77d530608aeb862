//! Callers that call a balancer until stopped, counting every outcome, and a bounded wait for
//! ready endpoints. Shared by the DNS tests and the etcd tests (`tests/etcd/main.rs` includes
//! this file).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower_lb::Balancer;
use tower_lb_testkit::pb::EchoRequest;
use tower_lb_testkit::pb::echo_client::EchoClient;

pub async fn wait_ready(balancer: &Balancer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while balancer.ready_len() != n {
        assert!(
            Instant::now() < deadline,
            "never {n} ready endpoints: {:?}",
            balancer.snapshot().endpoints
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Callers that call until stopped (bounded), counting successes and failures.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<Vec<String>>>,
}

pub fn load(balancer: &Balancer, callers: usize) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let tasks = (0..callers)
        .map(|_| {
            let mut client = EchoClient::new(balancer.clone());
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                let mut errors = Vec::new();
                for _ in 0..100_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let request = EchoRequest {
                        message: "hi".into(),
                        stream_count: 0,
                    };
                    match client.unary(request).await {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(status) => {
                            errors.push(status.to_string());
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
                errors
            })
        })
        .collect();
    Load {
        stop,
        ok,
        failed,
        tasks,
    }
}

impl Load {
    /// Calls that succeeded so far.
    #[allow(dead_code)] // used by the etcd tests
    pub fn ok(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    /// Stops the callers and returns (successful calls, failure messages).
    pub async fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut errors = Vec::new();
        for task in self.tasks {
            errors.extend(task.await.expect("caller task"));
        }
        assert_eq!(self.failed.load(Ordering::Relaxed), errors.len());
        (self.ok.load(Ordering::Relaxed), errors)
    }
}
