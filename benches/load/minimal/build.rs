//! Compiles the proto of the project named by `BENCH_PROTO_DIR` (its `proto/` directory).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var("BENCH_PROTO_DIR")?;
    println!("cargo:rerun-if-env-changed=BENCH_PROTO_DIR");
    println!("cargo:rerun-if-changed={dir}");
    let descriptors = protox::compile(["user/v1/user.proto"], [dir])?;
    tonic_prost_build::configure()
        .build_client(false)
        .compile_fds(descriptors)?;
    Ok(())
}
