//! Generates the prost messages and, behind the `client` / `server` features, the tonic stubs, with the `protoc`
//! binary vendored by `protoc-bin-vendored` so that no system protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let include = protoc_bin_vendored::include_path()?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    let client = std::env::var_os("CARGO_FEATURE_CLIENT").is_some();
    let server = std::env::var_os("CARGO_FEATURE_SERVER").is_some();
    let proto = std::path::Path::new("proto/orchestrator_service.proto");
    println!("cargo:rerun-if-changed={}", proto.display());

    tonic_prost_build::configure()
        .build_client(client)
        .build_server(server)
        .build_transport(client || server)
        // The stubs' codec sizes its per-call buffers for this protocol's messages (see `src/codec.rs`).
        .codec_path("crate::codec::ProstCodec")
        .compile_with_config(
            config,
            &[proto],
            &[std::path::Path::new("proto"), include.as_path()],
        )?;
    Ok(())
}
