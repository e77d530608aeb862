//! The chaos test, short form (issue 6, item 1): 5 real tonic servers and 64 concurrent
//! callers for 5 s; one server killed and restarted on its address every 400 ms, discovery
//! churn every 10 ms (weight changes, removes and re-inserts, extra keys on the same
//! addresses), one server 20 ms slow, one failing 30 % of its calls, and one blackout (every
//! server down for 500 ms) to exercise fail-fast.
//!
//! Asserts, from every call's counted outcome: no panic; no call lost (each returns within
//! 10 s); no failure outside what is allowed — the erroring server's own answers, connection
//! failures and unsent refusals around a kill, `NoReadyEndpoint` during the blackout (see
//! `tower_lb_testkit::chaos` for the exact rule); every kill noticed; the blackout failing fast
//! and recovering; nothing counted in flight at the end. The latency of the chaos run against
//! an all-healthy run of the same size is printed (`--nocapture`), never asserted.
//!
//! The long form: `CHAOS_SECS=60 CHAOS_CALLERS=256 cargo run --release --example chaos`.

use tower_lb_testkit::chaos::{self, Config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_short_form() {
    let config = Config::default();
    let healthy = chaos::run(config.healthy()).await.expect("healthy run");
    println!("{healthy}");
    let faulty = chaos::run(config).await.expect("chaos run");
    println!("{faulty}");
    println!("{}", chaos::compare(&healthy, &faulty));

    assert!(healthy.violations().is_empty(), "healthy run:\n{healthy}");
    assert_eq!(
        healthy.outcomes.ok, healthy.calls,
        "every call of the healthy run succeeds:\n{healthy}"
    );
    assert!(faulty.violations().is_empty(), "chaos run:\n{faulty}");
    // The faults really happened.
    assert!(faulty.kills > 1 && faulty.restarts > 1, "{faulty}");
    assert!(
        faulty.churn.removes > 0 && faulty.churn.weight_changes > 0,
        "{faulty}"
    );
    assert!(
        faulty.blackout.is_some(),
        "the blackout did not happen:\n{faulty}"
    );
    assert!(faulty.outcomes.server_error > 0, "{faulty}");
}
