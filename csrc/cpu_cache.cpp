// A caching CPU allocator for libtorch (the network's activations on a CPU).
//
// Every forward pass allocates and frees the same few hundred MB of activations.
// libtorch's default CPU allocator hands each block to glibc, which serves large
// blocks with fresh mappings (or, in a thread's own arena, heaps it unmaps once
// empty): each pass page-faulted ~85,000 zeroed pages, 10-25% of its time on this
// 2-core machine (onnxruntime, with an arena, none). Blocks of 1 MiB or more are kept
// here after free, by exact size, and handed out again: the shapes repeat every pass.
// libtorch-wide (c10::SetCPUAllocator), not process-wide like mallopt: the host
// process's own malloc is left alone.

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace {

constexpr size_t kMinCached = size_t(1) << 20;

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) override {
    void* p = nullptr;
    if (n >= kMinCached) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(n);
      if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        cached_ -= n;
      }
    }
    if (p == nullptr) {
      p = c10::alloc_cpu(n);  // throws c10::Error when out of memory, as the default
    }
    if (n < kMinCached) {
      return {p, p, &c10::free_cpu, c10::Device(c10::DeviceType::CPU)};
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      sizes_[p] = n;
    }
    // The context is the pointer itself, as libtorch's raw_allocate/raw_deallocate
    // (used inside ATen) require; the size is looked up on release.
    return {p, p, &CachingCpuAllocator::release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override {
    return &CachingCpuAllocator::release;
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  // Frees every cached block (new caps, engine dropped): the next pass allocates anew.
  size_t trim() {
    std::lock_guard<std::mutex> lock(mu_);
    size_t freed = cached_;
    for (auto& [size, ptrs] : free_) {
      for (void* p : ptrs) c10::free_cpu(p);
    }
    free_.clear();
    cached_ = 0;
    return freed;
  }

  size_t cached() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }

  static CachingCpuAllocator& instance() {
    // Never destroyed: tensors may be freed during static destruction.
    static auto* a = new CachingCpuAllocator();
    return *a;
  }

 private:
  static void release(void* p) {
    instance().put(p);
  }

  // Back into the cache if it is a large block of ours and there is room; else freed.
  void put(void* p) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = sizes_.find(p);
      if (it != sizes_.end()) {
        size_t n = it->second;
        sizes_.erase(it);
        if (cached_ + n <= kMaxCached) {
          free_[n].push_back(p);
          cached_ += n;
          return;
        }
      }
    }
    c10::free_cpu(p);
  }

  // Far above one pass's working set (about 400 MB at 1080p, ref-size 512).
  static constexpr size_t kMaxCached = size_t(2) << 30;
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;  // size -> held blocks
  std::unordered_map<void*, size_t> sizes_;               // blocks in use -> size
  size_t cached_ = 0;
};

}  // namespace

extern "C" {

// Makes the caching allocator libtorch's CPU allocator (idempotent). Tensors made
// before keep the default allocator's deleter and are freed as before. 0 on success.
int modnetmatte_cpu_cache_install() noexcept {
  try {
    static std::once_flag once;
    std::call_once(once, [] { c10::SetCPUAllocator(&CachingCpuAllocator::instance(), 1); });
    return c10::GetCPUAllocator() == &CachingCpuAllocator::instance() ? 0 : 1;
  } catch (...) {
    return 2;
  }
}

// Bytes held for reuse now.
size_t modnetmatte_cpu_cache_bytes() noexcept {
  try {
    return CachingCpuAllocator::instance().cached();
  } catch (...) {
    return 0;
  }
}

// Frees what is held; returns how many bytes.
size_t modnetmatte_cpu_cache_trim() noexcept {
  try {
    return CachingCpuAllocator::instance().trim();
  } catch (...) {
    return 0;
  }
}

}  // extern "C"
