//! Generates the Echo and interop (`grpc.testing`) clients and servers with protox (no
//! `protoc` needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/echo.proto");
    println!("cargo:rerun-if-changed=proto/interop/test.proto");
    let fds = protox::compile(["echo.proto", "interop/test.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
