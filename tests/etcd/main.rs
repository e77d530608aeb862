//! etcd discovery and registration against real etcd: members (`etcd`, Debian package
//! `etcd-server`) started by the tests on 127.0.0.1, written to with `etcdctl` (package
//! `etcd-client`) as an operator or a Go service would. A separate test binary, so it links
//! once.
//!
//! Without `etcd` and `etcdctl` the tests print a notice and pass, unless `CI=true`: then they
//! fail and say to install them (`.ci/run` does).

mod common;
#[path = "../dns/load.rs"]
mod load;
mod proxy;
mod server;

mod auth;
mod cluster;
mod compaction;
mod leases;
mod values;
