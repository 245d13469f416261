fn main() {
    std::process::exit(dbstash::cli::main());
}
