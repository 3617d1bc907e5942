//! Compiles `proto/` with protox (a protobuf compiler in Rust, so a fresh
//! machine needs no protoc) and generates the tonic services from the
//! descriptor set, which is also embedded for server reflection.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/shieldx/v1/shieldx.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let mut bytes = Vec::new();
    prost::Message::encode(&descriptors, &mut bytes)?;
    std::fs::write(out.join("shieldx_descriptor.bin"), &bytes)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
