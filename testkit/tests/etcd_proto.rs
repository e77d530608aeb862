//! tower-lb checks in the etcd client generated from `proto/etcd/rpc.proto` (so building it
//! needs neither protoc nor protox); this fails when the copy differs from what the build
//! generates now. `TOWER_LB_BLESS=1 cargo test -p tower-lb-testkit --test etcd_proto` rewrites
//! the copy.

#[test]
fn checked_in_etcd_client_is_current() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/etcd/etcdserverpb.rs"));
    let copy = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../src/discover/etcd/proto/etcdserverpb.rs");
    if std::env::var("TOWER_LB_BLESS").as_deref() == Ok("1") {
        std::fs::write(&copy, generated).expect("write the checked-in copy");
        return;
    }
    let checked_in = std::fs::read_to_string(&copy).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} differs from what testkit/build.rs generates from testkit/proto/etcd/rpc.proto; \
         run TOWER_LB_BLESS=1 cargo test -p tower-lb-testkit --test etcd_proto",
        copy.display()
    );
}
