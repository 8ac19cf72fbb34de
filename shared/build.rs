//! `sqlx::migrate!` embeds `migrations/` at compile time, and cargo does not see a new file there
//! on its own: without this, a binary built after adding a migration silently lacks it.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
