//! Four jobs:
//!
//! 1. torch-sys sets no rpath: without one, every binary, test and bench of this crate
//!    needs LD_LIBRARY_PATH to find libtorch. Embed libtorch's lib folder instead.
//! 2. Compile the caching CPU allocator (csrc/cpu_cache.cpp, against libtorch's c10
//!    headers) into this crate; src/host/cpu_cache.rs installs it.
//! 3. Compile MODNet's fused CPU operators (csrc/modnet_ops.cpp, against libtorch's
//!    headers, with OpenMP as libtorch's own parallel loops) into this crate;
//!    src/net/ops.rs registers them before a model loads. The CPU variants call them.
//! 4. Build the CUDA shim (csrc/cuda_shim.cpp: libtorch's stream and CUDA-graph API)
//!    into a shared library of its own, which src/gpu/shim.rs embeds and dlopens at run
//!    time after libtorch_cuda.so. It is linked against nothing (its libtorch symbols
//!    resolve at load), so the binaries still run where no CUDA library exists.
//!    Headers: libtorch's, plus CUDA's runtime headers from the PyPI wheels
//!    `nvidia-cuda-runtime` and `nvidia-cuda-crt` (tools/requirements.txt). Without
//!    them the build goes on with an empty shim, and CUDA runs without graphs or a
//!    stream of its own (said at run time).
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=MODNETMATTE_CUDA_INCLUDE");
    println!("cargo:rerun-if-changed=csrc/cuda_shim.cpp");
    println!("cargo:rerun-if-changed=csrc/cpu_cache.cpp");
    println!("cargo:rerun-if-changed=csrc/modnet_ops.cpp");
    let libtorch = std::env::var("LIBTORCH").ok().map(PathBuf::from);
    if let Some(dir) = &libtorch {
        let lib = std::fs::canonicalize(dir.join("lib")).unwrap_or_else(|_| dir.join("lib"));
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
    // This script is shared with the plugin and CLI crates, which need only the rpath.
    if std::env::var("CARGO_PKG_NAME").as_deref() != Ok("modnetmatte") {
        return;
    }
    let torch = libtorch
        .as_deref()
        .and_then(|t| std::fs::canonicalize(t).ok())
        .expect("LIBTORCH names libtorch (scripts/setup.sh makes .venv/libtorch)");
    torch_cpp(&torch, "csrc/cpu_cache.cpp").compile("modnetmatte_cpu_cache");
    torch_cpp(&torch, "csrc/modnet_ops.cpp")
        .include(torch.join("include/torch/csrc/api/include"))
        .flag("-fopenmp")
        .opt_level(3)
        .compile("modnetmatte_ops");
    // libtorch's own OpenMP runtime (the same file its parallel loops use), so that one
    // thread team serves both; the wheel ships it as libgomp.so.1 with no plain .so.
    println!(
        "cargo:rustc-link-search=native={}",
        torch.join("lib").display()
    );
    println!("cargo:rustc-link-lib=dylib:+verbatim=libgomp.so.1");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let shim = out.join("libmodnetmatte_cuda_shim.so");
    let why_not = match build_shim(libtorch.as_deref(), &shim) {
        Ok(()) => String::new(),
        Err(e) => {
            println!("cargo:warning=CUDA shim not built ({e}): CUDA will run without graphs");
            // An empty file: src/gpu/shim.rs says at run time that the shim is missing.
            std::fs::write(&shim, b"").expect("write to OUT_DIR");
            e
        }
    };
    println!("cargo:rustc-env=MODNETMATTE_CUDA_SHIM={}", shim.display());
    println!("cargo:rustc-env=MODNETMATTE_CUDA_SHIM_WHY_NOT={why_not}");
}

/// A C++ build of `file` against libtorch's headers, with its ABI.
fn torch_cpp(torch: &Path, file: &str) -> cc::Build {
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file(file)
        .include(torch.join("include"))
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .warnings(false);
    build
}

fn build_shim(libtorch: Option<&Path>, out: &Path) -> Result<(), String> {
    let torch = libtorch.ok_or("LIBTORCH is not set")?;
    let torch = std::fs::canonicalize(torch).map_err(|e| format!("{}: {e}", torch.display()))?;
    let cuda_include = match std::env::var_os("MODNETMATTE_CUDA_INCLUDE") {
        Some(dir) => PathBuf::from(dir),
        // torch's wheel sits in site-packages beside nvidia/cu13 (the CUDA wheels).
        None => torch.join("../nvidia/cu13/include"),
    };
    for needed in [
        torch.join("include/ATen/cuda/CUDAGraph.h"),
        cuda_include.join("cuda_runtime_api.h"),
        cuda_include.join("crt/host_defines.h"),
    ] {
        if !needed.exists() {
            return Err(format!("{} is missing", needed.display()));
        }
    }
    let compiler = cc::Build::new().cpp(true).get_compiler();
    let status = Command::new(compiler.path())
        .args([
            "-std=c++17",
            "-D_GLIBCXX_USE_CXX11_ABI=1",
            "-fPIC",
            "-shared",
            "-O2",
        ])
        .args(["-Wl,-z,undefs", "-Wl,-soname,libmodnetmatte_cuda_shim.so"])
        .arg("-I")
        .arg(torch.join("include"))
        .arg("-I")
        .arg(torch.join("include/torch/csrc/api/include"))
        .arg("-I")
        .arg(&cuda_include)
        .arg("csrc/cuda_shim.cpp")
        .arg("-o")
        .arg(out)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", compiler.path().display()))?;
    if !status.success() {
        return Err(format!("{} failed ({status})", compiler.path().display()));
    }
    Ok(())
}
