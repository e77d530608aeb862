//! Integration tests: real tonic servers on 127.0.0.1, driven through the balancer.
//!
//! One test binary with a module per behaviour, so the suite links once.

mod common;

mod bad_input;
mod balancing;
mod drain;
mod fail_fast;
mod failover;
mod hashing;
mod layer4;
mod policies;
mod routing;
mod shutdown;
mod tiers;
mod unsent;
