//! torch-sys sets no rpath: without one, every binary, test and bench of this crate
//! needs LD_LIBRARY_PATH to find libtorch. Embed libtorch's lib folder instead.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(dir) = std::env::var("LIBTORCH") {
        let lib = std::fs::canonicalize(std::path::Path::new(&dir).join("lib"))
            .unwrap_or_else(|_| std::path::Path::new(&dir).join("lib"));
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
