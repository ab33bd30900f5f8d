//! The templates are embedded with include_dir; rebuild when any of them changes or is added.

fn main() {
    println!("cargo:rerun-if-changed=templates");
}
