// Generates the client code for the subset of etcd's gRPC API in
// proto/etcd.proto with protox, so that the build needs no system protoc.
fn main() {
    let protos = ["proto/etcd.proto"];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"]).expect("compile etcd.proto");
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(fds)
        .expect("generate etcd client code");
}
