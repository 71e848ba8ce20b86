fn main() {
    eprintln!("raft-checker: not built yet");
    std::process::exit(2);
}
