//! Generates the Echo and interop (`grpc.testing`) clients and servers and the ORCA load
//! report message (`xds.data.orca.v3`) and out-of-band service (`xds.service.orca.v3`) with protox (no `protoc` needed), and etcd's v3 client
//! (`proto/etcd/rpc.proto`) into `OUT_DIR/etcd/`, which `tests/etcd_proto.rs` compares with
//! the copy tower-lb checks in.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/echo.proto");
    println!("cargo:rerun-if-changed=proto/interop/test.proto");
    println!("cargo:rerun-if-changed=proto/etcd/rpc.proto");
    println!("cargo:rerun-if-changed=proto/xds/data/orca/v3/orca_load_report.proto");
    println!("cargo:rerun-if-changed=proto/xds/service/orca/v3/orca.proto");
    let fds = protox::compile(
        [
            "echo.proto",
            "interop/test.proto",
            "xds/data/orca/v3/orca_load_report.proto",
            "xds/service/orca/v3/orca.proto",
        ],
        ["proto"],
    )?;
    tonic_prost_build::configure().compile_fds(fds)?;

    // tower-lb's etcd client: calls only, no server, no `connect` (tower-lb builds its own
    // channel, and tonic's `transport` feature is not one tower-lb turns on).
    let etcd_out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("etcd");
    std::fs::create_dir_all(&etcd_out)?;
    let fds = protox::compile(["etcd/rpc.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .out_dir(&etcd_out)
        .compile_fds(fds)?;
    Ok(())
}
