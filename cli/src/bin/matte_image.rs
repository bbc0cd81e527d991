//! Matte one photo with the engine and write the matte, a transparent cut-out and the
//! photo composited over a new background as PNGs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use image::{RgbImage, RgbaImage, imageops::FilterType};
use modnetmatte::{
    DeviceRequest, Engine, EngineConfig, Frame, FrameMut, Matte, PixelFormat, Precision, composite,
};

/// Cut the person out of a photo with MODNet and put them on another background.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Photo to matte (PNG or JPEG).
    input: PathBuf,
    /// Background for the composite (PNG or JPEG), scaled to cover the photo.
    #[arg(short, long)]
    background: PathBuf,
    /// Folder for <name>_matte.png, <name>_cutout.png and <name>_composite.png.
    #[arg(short, long, default_value = "out")]
    out_dir: PathBuf,
    /// TorchScript MODNet made by tools/modnet/export.py.
    #[arg(
        short,
        long,
        env = "MODNETMATTE_MODEL",
        default_value = "models/modnet_photographic.pt"
    )]
    model: PathBuf,
    /// Short side of the network input (MODNet's reference size rule).
    #[arg(long, default_value_t = 512)]
    ref_size: u32,
    /// libtorch threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceRequest,
    /// auto, fp32, fp16 (CUDA only; a CPU runs fp32 and says so) or bf16 (the CPU variant; auto takes it with AMX or AVX512-BF16).
    #[arg(long, default_value = "fp32")]
    precision: Precision,
    /// Run the matte this many times and report the median time per stage.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Scale the photo to WIDTHxHEIGHT first (e.g. 1920x1080), to time other sizes.
    #[arg(long, value_parser = modnetmatte::frame::parse_size)]
    size: Option<(u32, u32)>,
    /// A reference matte (16-bit grey PNG, e.g. from tools/modnet/fixtures.py) to
    /// compare with; fails when the max |diff| exceeds --max-diff.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Largest accepted |diff| against --reference, in 1/255 steps.
    #[arg(long, default_value_t = 2.0)]
    max_diff: f64,
}

fn load_rgb(path: &Path, what: &str) -> Result<RgbImage> {
    Ok(image::open(path)
        .with_context(|| format!("{what} {}: cannot be read as an image", path.display()))?
        .to_rgb8())
}

fn save(img_path: &Path, result: image::ImageResult<()>) -> Result<()> {
    result.with_context(|| format!("cannot write {}", img_path.display()))?;
    println!("wrote {}", img_path.display());
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut photo = load_rgb(&args.input, "input")?;
    if let Some((w, h)) = args.size {
        photo = image::imageops::resize(&photo, w, h, FilterType::Triangle);
    }
    let (w, h) = photo.dimensions();
    let background = image::DynamicImage::ImageRgb8(load_rgb(&args.background, "background")?)
        .resize_to_fill(w, h, FilterType::Triangle)
        .to_rgb8();
    let engine = engine(&args, w, h)?;
    let frame = Frame::packed(photo.as_raw(), w, h, PixelFormat::Rgb);
    let matte = timed_mattes(&args, &engine, &frame)?;
    if let Some(reference) = &args.reference {
        compare(&args, &matte, reference)?;
    }
    write_outputs(&args, &photo, &background, &matte)
}

/// The engine the arguments ask for, warmed up at the photo's size; says what it is.
fn engine(args: &Args, w: u32, h: u32) -> Result<Engine> {
    let mut config = EngineConfig::new(&args.model);
    config.ref_size = args.ref_size;
    config.num_threads = args.threads;
    config.device = args.device;
    config.precision = args.precision;
    config.warmup_frame = Some((w, h));
    let engine = Engine::new(config)?;
    let (iw, ih) = engine.inference_size(w, h);
    println!(
        "model {} on {} ({}); {w}x{h} photo -> {iw}x{ih} network input, {} libtorch threads",
        args.model.display(),
        match engine.device() {
            tch::Device::Cpu => "cpu".to_string(),
            d => format!("{d:?}"),
        },
        engine.device_note(),
        tch::get_num_threads(),
    );
    Ok(engine)
}

/// The matte, `--repeat` times; prints the median time per stage.
fn timed_mattes(args: &Args, engine: &Engine, frame: &Frame<'_>) -> Result<Matte> {
    let mut runs = Vec::new();
    let mut matte = None;
    for _ in 0..args.repeat {
        let (m, t) = engine.matte(frame)?;
        runs.push(t);
        matte = Some(m);
    }
    let Some(matte) = matte else {
        bail!("no run was made");
    };
    let stage =
        |f: fn(&modnetmatte::StageTimings) -> Duration| median(runs.iter().map(f).collect());
    println!(
        "per frame (median of {}): preprocess {:.1} ms, inference {:.1} ms, postprocess {:.1} ms, total {:.1} ms",
        runs.len(),
        ms(stage(|t| t.preprocess)),
        ms(stage(|t| t.inference)),
        ms(stage(|t| t.postprocess)),
        ms(stage(|t| t.total())),
    );
    Ok(matte)
}

/// The matte against a reference (16-bit grey PNG); fails past `--max-diff`.
fn compare(args: &Args, matte: &Matte, reference: &Path) -> Result<()> {
    let (w, h) = (matte.width, matte.height);
    let r = image::open(reference)
        .with_context(|| {
            format!(
                "reference {}: cannot be read as an image",
                reference.display()
            )
        })?
        .to_luma16();
    if r.dimensions() != (w, h) {
        bail!(
            "reference {} is {:?}, the photo {w}x{h}",
            reference.display(),
            r.dimensions()
        );
    }
    let diffs: Vec<f64> = matte
        .alpha
        .iter()
        .zip(r.as_raw())
        .map(|(&a, &b)| (a as f64 - b as f64 / 65535.0).abs() * 255.0)
        .collect();
    let max = diffs.iter().copied().fold(0.0, f64::max);
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    println!(
        "against {}: max |diff| {max:.3}/255, mean {mean:.4}/255",
        reference.display()
    );
    if max > args.max_diff {
        bail!(
            "max |diff| {max:.3}/255 exceeds --max-diff {}",
            args.max_diff
        );
    }
    Ok(())
}

/// <name>_matte.png, _cutout.png and _composite.png in `--out-dir`.
fn write_outputs(
    args: &Args,
    photo: &RgbImage,
    background: &RgbImage,
    matte: &Matte,
) -> Result<()> {
    let (w, h) = photo.dimensions();
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    let stem = args
        .input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "frame".into());
    let path = |suffix: &str| args.out_dir.join(format!("{stem}_{suffix}.png"));

    let alpha = matte.alpha_u8();
    let matte_img = image::GrayImage::from_raw(w, h, alpha.clone())
        .context("matte size does not match the photo")?;
    save(&path("matte"), matte_img.save(path("matte")))?;

    let cutout = RgbaImage::from_fn(w, h, |x, y| {
        let p = photo.get_pixel(x, y).0;
        let a = alpha[(y * w + x) as usize];
        image::Rgba([p[0], p[1], p[2], a])
    });
    save(&path("cutout"), cutout.save(path("cutout")))?;

    let mut composite = RgbImage::new(w, h);
    composite::blend(
        &Frame::packed(photo.as_raw(), w, h, PixelFormat::Rgb),
        &Frame::packed(background.as_raw(), w, h, PixelFormat::Rgb),
        &alpha,
        &mut FrameMut::packed(&mut composite, w, h, PixelFormat::Rgb),
    )?;
    save(&path("composite"), composite.save(path("composite")))?;
    Ok(())
}
