//! The field names of the element's `stats` structure, for the element and every
//! program that reads it (the CLI, the benchmarks): a name typed twice could differ
//! and read as 0 without a word. README's `stats` entry says what each means.

pub const FRAMES: &str = "frames";
pub const PACING: &str = "pacing";
pub const MATTE_AGE_MEAN_MS: &str = "matte-age-mean-ms";
pub const MATTE_AGE_LAST_MS: &str = "matte-age-last-ms";
pub const MATTE_AGE_MAX_MS: &str = "matte-age-max-ms";
pub const FRAMES_EARLIER_MATTE: &str = "frames-earlier-matte";
pub const FRAMES_WITHOUT_MATTE: &str = "frames-without-matte";
pub const FRAMES_SKIPPED_BY_NETWORK: &str = "frames-skipped-by-network";
pub const FRAMES_MATTE_REUSED: &str = "frames-matte-reused";
pub const NETWORK_RUNS: &str = "network-runs";
pub const FRAMES_LATE_REUSED: &str = "frames-late-reused";
pub const MEAN_INFERENCE_MS: &str = "mean-inference-ms";
pub const LAST_INFERENCE_MS: &str = "last-inference-ms";
pub const MEAN_PREPROCESS_MS: &str = "mean-preprocess-ms";
pub const MEAN_POSTPROCESS_MS: &str = "mean-postprocess-ms";
pub const MEAN_COMPOSITING_MS: &str = "mean-compositing-ms";
pub const MEAN_TOTAL_MS: &str = "mean-total-ms";
pub const COMPOSITING_ON: &str = "compositing-on";
pub const MEAN_UPLOAD_MS: &str = "mean-upload-ms";
pub const MEAN_DOWNLOAD_MS: &str = "mean-download-ms";
pub const MEAN_LATENCY_MS: &str = "mean-latency-ms";
pub const PINNED_MB: &str = "pinned-mb";
pub const DEVICE_BUFFERS_MB: &str = "device-buffers-mb";
pub const BATCH: &str = "batch";
pub const CUDA_GRAPHS: &str = "cuda-graphs";
pub const GRAPH_REPLAYS: &str = "graph-replays";
pub const GPU_MEMORY_USED_MB: &str = "gpu-memory-used-mb";
pub const GPU_MEMORY_TOTAL_MB: &str = "gpu-memory-total-mb";
pub const MATTE_SHIFT_MEAN_PX: &str = "matte-shift-mean-px";
pub const MATTE_SHIFT_LAST_PX: &str = "matte-shift-last-px";
pub const ROOM_KNOWN_PERCENT: &str = "room-known-percent";
pub const ROOM_REMOVED_MEAN_PERCENT: &str = "room-removed-mean-percent";
pub const SCENE_CUTS: &str = "scene-cuts";
pub const MEAN_FOLLOW_MS: &str = "mean-follow-ms";

/// Every field, in the order the structure has them.
pub const ALL: &[&str] = &[
    FRAMES,
    PACING,
    MATTE_AGE_MEAN_MS,
    MATTE_AGE_LAST_MS,
    MATTE_AGE_MAX_MS,
    FRAMES_EARLIER_MATTE,
    FRAMES_WITHOUT_MATTE,
    FRAMES_SKIPPED_BY_NETWORK,
    FRAMES_MATTE_REUSED,
    NETWORK_RUNS,
    FRAMES_LATE_REUSED,
    MEAN_INFERENCE_MS,
    LAST_INFERENCE_MS,
    MEAN_PREPROCESS_MS,
    MEAN_POSTPROCESS_MS,
    MEAN_COMPOSITING_MS,
    MEAN_TOTAL_MS,
    COMPOSITING_ON,
    MEAN_UPLOAD_MS,
    MEAN_DOWNLOAD_MS,
    MEAN_LATENCY_MS,
    PINNED_MB,
    DEVICE_BUFFERS_MB,
    BATCH,
    CUDA_GRAPHS,
    GRAPH_REPLAYS,
    GPU_MEMORY_USED_MB,
    GPU_MEMORY_TOTAL_MB,
    MATTE_SHIFT_MEAN_PX,
    MATTE_SHIFT_LAST_PX,
    ROOM_KNOWN_PERCENT,
    ROOM_REMOVED_MEAN_PERCENT,
    SCENE_CUTS,
    MEAN_FOLLOW_MS,
];
