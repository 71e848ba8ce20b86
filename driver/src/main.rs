fn main() {
    eprintln!("raft-driver: not built yet");
    std::process::exit(2);
}
