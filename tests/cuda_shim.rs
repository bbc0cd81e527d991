//! The CUDA shim on a machine without a GPU (CI): it is built into the binary, loads
//! against this libtorch's CUDA library, and every entry reports an error instead of
//! letting a C++ exception cross into Rust (which would abort this process).
//! (A process of its own: it loads libtorch_cuda.so, which the other tests must not.)

#[test]
fn every_shim_entry_fails_cleanly_without_a_gpu() {
    if modnetmatte::gpu::driver::skips_with_a_driver() {
        return;
    }
    assert!(modnetmatte::gpu::shim::shim_built());
    let said = modnetmatte::gpu::shim::entries_without_gpu().expect("the shim loads");
    assert_eq!(said.len(), 7);
    for (i, r) in said.iter().enumerate() {
        let e = r.as_ref().expect_err("no GPU: every entry must fail");
        assert!(!e.is_empty(), "entry {i}");
    }
    // Stream entries fail in CUDA itself; graph entries on the null graph are refused
    // by the shim's own check.
    assert!(said[0].as_ref().unwrap_err().contains("CUDA"), "{said:?}");
    assert!(
        said[4].as_ref().unwrap_err().contains("null CUDA graph"),
        "{said:?}"
    );
}
