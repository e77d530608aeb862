//! Generates the Echo and interop (`grpc.testing`) clients and servers, and the ORCA load
//! report message (`xds.data.orca.v3`), with protox (no
//! `protoc` needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/echo.proto");
    println!("cargo:rerun-if-changed=proto/interop/test.proto");
    println!("cargo:rerun-if-changed=proto/xds/data/orca/v3/orca_load_report.proto");
    let fds = protox::compile(
        [
            "echo.proto",
            "interop/test.proto",
            "xds/data/orca/v3/orca_load_report.proto",
        ],
        ["proto"],
    )?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
