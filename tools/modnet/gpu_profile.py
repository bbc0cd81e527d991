"""Where MODNet's GPU time goes, for the GPU check: the exported TorchScript files
(the ones the element loads) on CUDA at one network input size.

1. Per forward, replayed from a CUDA graph (no host issue cost: the GPU's own time),
   fp32 and fp16, batch 1 and 8, in the contiguous (NCHW) layout and in channels-last
   (NHWC: cuDNN's tensor-core convolutions work in it without transposing).
2. The CUDA kernels of one fp16 forward at batch 1 (torch.profiler): the top kernels
   by GPU time, with their share.

    python3 -m modnet.gpu_profile --models ../target/gpu-bundle --size 896x512

Prints markdown table rows; needs only torch.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch


def per_forward_ms(model, x, replays=30):
    """GPU ms per forward, from a CUDA graph of one forward replayed `replays` times."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.inference_mode():
        for _ in range(6):  # the profiling executor and cuDNN settle
            model(x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.inference_mode(), torch.cuda.graph(graph):
        model(x)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    graph.replay()
    start.record()
    for _ in range(replays):
        graph.replay()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / replays


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m modnet.gpu_profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", required=True, help="folder with modnet_photographic{,_fp16}.pt")
    p.add_argument("--size", default="896x512", help="network input WIDTHxHEIGHT (1080p at ref 512: 896x512)")
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("error: torch sees no CUDA device", file=sys.stderr)
        return 1
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False  # as the element (fp32 stays fp32)
    w, h = map(int, args.size.split("x"))
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, input {w}x{h}", file=sys.stderr)
    files = {"fp32": "modnet_photographic.pt", "fp16": "modnet_photographic_fp16.pt"}
    for precision, name in files.items():
        model = torch.jit.load(os.path.join(args.models, name), map_location="cuda").eval()
        for layout in ("nchw", "channels-last"):
            try:
                m = model.to(memory_format=torch.channels_last) if layout == "channels-last" else model
            except Exception as e:  # noqa: BLE001 - reported in the table
                print(f"| gpu profile | {w}x{h} | {precision} | {layout} | - | failed: {e} |")
                continue
            for n in (1, 8):
                x = torch.rand(n, 3, h, w, device="cuda") * 2 - 1
                if layout == "channels-last":
                    x = x.contiguous(memory_format=torch.channels_last)
                try:
                    ms = per_forward_ms(m, x)
                    print(f"| gpu profile | network {w}x{h} | {precision} | {layout} | batch {n} "
                          f"| {ms:.3f} ms per forward, {ms / n:.3f} ms per frame | CUDA graph replay, GPU time |")
                except Exception as e:  # noqa: BLE001
                    print(f"| gpu profile | network {w}x{h} | {precision} | {layout} | batch {n} | failed: "
                          f"{str(e).splitlines()[0]} | |")
            torch.cuda.synchronize()
        del model
        torch.cuda.empty_cache()

    try:
        kernels(args, files, w, h)
    except Exception as e:  # noqa: BLE001 - reported in the table
        print(f"| gpu kernels | failed: {str(e).splitlines()[0]} | | | | |")
    return 0


def kernels(args, files, w, h):
    """The kernels of one fp16 forward (contiguous layout, as the element runs it)."""
    model = torch.jit.load(os.path.join(args.models, files["fp16"]), map_location="cuda").eval()
    x = torch.rand(1, 3, h, w, device="cuda") * 2 - 1
    with torch.inference_mode():
        for _ in range(6):
            model(x)
        torch.cuda.synchronize()
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                model(x)
            torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA]
    total = sum(e.self_device_time_total for e in events) or 1
    print(f"| gpu kernels | fp16 batch 1 {w}x{h}: {total / 5 / 1000:.3f} ms of kernels per forward | calls per forward | ms per forward | share | |")
    for e in sorted(events, key=lambda e: -e.self_device_time_total)[: args.top]:
        name = e.key.replace("|", "/")[:90]
        print(f"| gpu kernel | {name} | {e.count / 5:.0f} | {e.self_device_time_total / 5 / 1000:.3f} "
              f"| {100 * e.self_device_time_total / total:.1f}% | |")


if __name__ == "__main__":
    sys.exit(main())
