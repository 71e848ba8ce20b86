// Generates the tonic/prost code from proto/*.proto with protox (a protobuf
// compiler written in Rust), so that the build needs no system protoc.
fn main() {
    let protos = ["proto/raft.proto", "proto/kv.proto"];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"]).expect("compile protos");
    tonic_prost_build::configure()
        .compile_fds(fds)
        .expect("generate tonic code");
}
