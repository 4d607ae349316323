// Migrations are embedded into the binary: rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
