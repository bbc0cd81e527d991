// libtorch's CUDA stream and CUDA-graph API for Rust, which tch does not wrap.
//
// Built by build.rs into a shared library of its own with no -l flags: its libtorch
// symbols stay undefined and resolve when src/cuda.rs dlopens it after
// libtorch_cuda.so was loaded RTLD_GLOBAL. So the binary itself never needs the CUDA
// libraries, and CPU-only machines never load this at all.
//
// Every entry catches every C++ exception (an exception unwinding into Rust aborts
// the process) and returns 0 on success, -1 with the message in mm_last_error().

#include <cuda.h>  // first: CUDA_VERSION decides CUDAGraph's layout
#include <cuda_runtime_api.h>

#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAStream.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

namespace {

thread_local std::string last_error;

template <typename F>
int guarded(F&& f) {
  try {
    f();
    return 0;
  } catch (const c10::Error& e) {
    last_error = e.what_without_backtrace();
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return -1;
}

at::cuda::CUDAGraph* as_graph(void* graph) {
  if (graph == nullptr) throw std::invalid_argument("null CUDA graph");
  return static_cast<at::cuda::CUDAGraph*>(graph);
}

}  // namespace

extern "C" {

// The message of the last failed call on this thread.
const char* mm_last_error() { return last_error.c_str(); }

// Bumped whenever an entry's signature changes (src/cuda.rs checks it).
int mm_abi_version() { return 1; }

// A stream from libtorch's pool on `device`: its id (for mm_stream_set_current) and
// its native cudaStream_t (for our events).
int mm_stream_from_pool(int device, int high_priority, int64_t* id, void** native) {
  return guarded([&] {
    auto s = c10::cuda::getStreamFromPool(high_priority != 0,
                                          static_cast<c10::DeviceIndex>(device));
    *id = s.id();
    *native = reinterpret_cast<void*>(s.stream());
  });
}

// Makes stream `id` of `device` the current one of this thread (libtorch's current
// stream is per thread and per device).
int mm_stream_set_current(int device, int64_t id) {
  return guarded([&] {
    auto s = c10::cuda::CUDAStream::unpack3(
        id, static_cast<c10::DeviceIndex>(device), c10::DeviceType::CUDA);
    c10::cuda::setCurrentCUDAStream(s);
  });
}

// This thread's current stream on `device`: its id and native handle.
int mm_stream_current(int device, int64_t* id, void** native) {
  return guarded([&] {
    auto s = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device));
    *id = s.id();
    *native = reinterpret_cast<void*>(s.stream());
  });
}

int mm_graph_new(void** graph) {
  return guarded([&] { *graph = new at::cuda::CUDAGraph(); });
}

// Starts capturing the work this thread issues on its current stream (which must
// not be the default stream). `thread_local_mode` 1: other threads' CUDA calls are
// not checked (our streaming thread may allocate page-locked memory meanwhile).
int mm_graph_capture_begin(void* graph, int thread_local_mode) {
  return guarded([&] {
    auto mode = thread_local_mode ? cudaStreamCaptureModeThreadLocal
                                  : cudaStreamCaptureModeGlobal;
    as_graph(graph)->capture_begin({0, 0}, mode);
  });
}

// Ends the capture and instantiates the graph; fails if anything in it could not be
// captured. Always call it after a begin, even when the captured work failed: it
// takes the stream out of capture mode.
int mm_graph_capture_end(void* graph) {
  return guarded([&] { as_graph(graph)->capture_end(); });
}

// Launches the captured work on this thread's current stream.
int mm_graph_replay(void* graph) {
  return guarded([&] { as_graph(graph)->replay(); });
}

void mm_graph_free(void* graph) {
  guarded([&] { delete static_cast<at::cuda::CUDAGraph*>(graph); });
}

}  // extern "C"
