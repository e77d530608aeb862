//! Subsetting: a client of a large fleet connects to a bounded subset of it.
//!
//! A client that connects to every one of 10,000 servers pays for 10,000 connections (memory,
//! keep-alives, health checks) and spreads its calls so thin that no server's load estimate
//! means much; 10,000 clients doing so give every server 10,000 connections. With subsetting
//! each client takes `size` endpoints of what discovery lists, and passes only those on:
//! [`subset`] wraps any discovery stream.
//!
//! Two ways to choose, by what the clients know about each other:
//!
//! * [`Subsetting::rendezvous`] (gRPC A68's random subsetting, by rendezvous hashing): each
//!   endpoint scores `hash(client seed, key)`, and the client takes the `size` best. No
//!   coordination; one endpoint more or less changes at most one member of any client's
//!   subset. The fleet's load is as even as random draws make it: with 1,000 clients ×
//!   subsets of 50 over 10,000 servers each server is in 5 subsets on average, and the
//!   busiest in about 13 (`examples/simulate`, section 7).
//! * [`Subsetting::aperture`] (deterministic aperture, as in Finagle): client `i` of `n` known
//!   clients (a StatefulSet ordinal, a shard number) takes the `size` endpoints that follow
//!   position `i / n` of the ring of endpoints in key order. Clients tile the ring, so every
//!   server is in the same number of subsets, give or take one; one endpoint more or less
//!   shifts a client's window by at most one place, so at most one member changes — two
//!   when the window wraps round the end of the ring (its two pieces shift unlike each
//!   other).
//!
//! Both keep the subset when discovery fails (errors pass through; the balancer keeps its
//! set), and an update of a chosen endpoint (a new weight) passes through as an update.

mod config;
mod selection;
mod stream;

pub use config::Subsetting;
pub use stream::{Subset, subset};
