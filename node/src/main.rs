fn main() {
    eprintln!("raft-node: not built yet");
    std::process::exit(2);
}
