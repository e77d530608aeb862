//! Integration tests: real tonic servers on 127.0.0.1, driven through the balancer.
//!
//! One test binary with a module per behaviour, so the suite links once.

mod common;

mod bad_input;
mod balancing;
mod breaker;
mod call_spans;
mod client_contract;
mod connection_probe;
mod deadlines;
mod drain;
mod fail_fast;
mod failover;
mod gray_failures;
mod hashing;
#[cfg(feature = "health")]
mod health_check;
mod hedging;
mod layer4;
mod limits;
mod message_size;
mod orca;
mod outlier;
mod policies;
mod prequal;
mod retries;
mod retry_budget;
mod routing;
#[cfg(feature = "service-config")]
mod service_config;
mod shutdown;
mod slow_start;
mod snapshot;
mod streams;
mod subsetting;
mod tiers;
mod unsent;
