//! With feature `etcd`: compiles the part of etcd's API discovery uses (`proto/etcd.proto`)
//! with protox, so no protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(feature = "etcd")]
    {
        println!("cargo:rerun-if-changed=proto/etcd.proto");
        let etcd = protox::compile(["etcd.proto"], ["proto"])?;
        tonic_prost_build::configure()
            .build_server(false)
            .compile_fds(etcd)?;
    }
    Ok(())
}
