//! `cargo run -p rvs-config --example check -- FILE`: validates an rvs.toml
//! and prints the rules `ipvsadm -S -n` would show for it.
fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: check FILE");
        std::process::exit(2);
    };
    match rvs_config::load(std::path::Path::new(&path)) {
        Ok(c) => print!("{}", rvs_config::to_rules(&c)),
        Err(errs) => {
            for e in errs {
                eprintln!("{e}");
            }
            std::process::exit(1);
        }
    }
}
