//! The background under the person for `output=composite`: blur (made per frame by
//! the compositing), or a frame in the stream's format and size (a colour, or the
//! picture scaled to cover), built once per setting and frame shape and reused.

use std::sync::Arc;

use modnetmatte::FrameShape;
use modnetmatte::OwnedFrame;
use modnetmatte::composite;

use super::Background;
use super::settings::Settings;

/// A decoded background picture, kept at its own size; scaled per caps.
struct Picture {
    path: String,
    image: image::RgbImage,
}

/// Decodes a background picture; the error names the file and the reason.
fn load(path: &str) -> Result<Picture, String> {
    let image = image::open(path).map_err(|e| format!("background image {path}: {e}"))?;
    Ok(Picture {
        path: path.to_string(),
        image: image.to_rgb8(),
    })
}

/// What a prepared background was made from: rebuilt when any of it changes.
#[derive(PartialEq)]
struct Key {
    kind: Background,
    color: u32,
    picture: Option<String>,
    format: modnetmatte::PixelFormat,
    width: u32,
    height: u32,
}

/// What `Backgrounds::frame` has to say besides the frame.
#[derive(Debug, Default)]
pub(super) struct Notes {
    /// A picture that could not be loaded while playing (the previous background
    /// stays): a warning to post once.
    pub(super) warning: Option<String>,
    /// What was (re)built, for the debug log.
    pub(super) rebuilt: Option<String>,
}

/// The stream's background cache.
#[derive(Default)]
pub(super) struct Backgrounds {
    picture: Option<Picture>,
    /// Last picture path that failed to load, so the warning is posted once.
    failed_picture: Option<String>,
    prepared: Option<(Key, Arc<OwnedFrame>)>,
}

impl Backgrounds {
    /// Loads the picture `settings` name for background=image at start: there an
    /// unreadable file is an error (while playing, a warning).
    pub(super) fn at_start(settings: &Settings) -> Result<Self, gst::ErrorMessage> {
        let picture = match (
            settings.look.background,
            settings.look.output,
            &settings.look.background_image,
        ) {
            (Background::Image, super::Output::Composite, None) => {
                return Err(gst::error_msg!(
                    gst::ResourceError::Settings,
                    ("background=image needs background-image (a PNG or JPEG file)")
                ));
            }
            (Background::Image, super::Output::Composite, Some(path)) => Some(
                load(path).map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ("{e}")))?,
            ),
            _ => None,
        };
        Ok(Self {
            picture,
            ..Self::default()
        })
    }

    /// The background frame for this frame shape (None for blur: made from each
    /// frame), rebuilt only when its inputs change. A picture changed while playing is
    /// loaded now; if that fails the colour stands in until one loads.
    pub(super) fn frame(
        &mut self,
        settings: &Settings,
        shape: FrameShape,
        notes: &mut Notes,
    ) -> Result<Option<Arc<OwnedFrame>>, String> {
        let mut kind = settings.look.background;
        if kind == Background::Blur {
            return Ok(None);
        }
        if kind == Background::Image {
            self.follow_picture(settings, notes);
            if self.picture.is_none() {
                kind = Background::Color;
            }
        }
        let key = Key {
            kind,
            color: settings.look.background_color,
            picture: self
                .picture
                .as_ref()
                .filter(|_| kind == Background::Image)
                .map(|p| p.path.clone()),
            format: shape.format,
            width: shape.width,
            height: shape.height,
        };
        if let Some((k, frame)) = &self.prepared
            && *k == key
        {
            return Ok(Some(frame.clone()));
        }
        let frame = Arc::new(self.build(kind, settings.look.background_color, shape)?);
        notes.rebuilt = Some(format!(
            "{kind:?} {}x{} {:?}",
            shape.width, shape.height, shape.format
        ));
        self.prepared = Some((key, frame.clone()));
        Ok(Some(frame))
    }

    /// Loads the picture `background-image` names if it changed (once per path that
    /// fails).
    fn follow_picture(&mut self, settings: &Settings, notes: &mut Notes) {
        let wanted = settings.look.background_image.clone().unwrap_or_default();
        let loaded = self.picture.as_ref().map(|p| p.path.as_str());
        if loaded == Some(wanted.as_str()) || self.failed_picture.as_deref() == Some(&wanted) {
            return;
        }
        match load(&wanted) {
            Ok(p) => self.picture = Some(p),
            Err(e) => {
                notes.warning = Some(format!("{e}; keeping the previous background"));
                self.failed_picture = Some(wanted);
            }
        }
    }

    fn build(&self, kind: Background, color: u32, shape: FrameShape) -> Result<OwnedFrame, String> {
        let FrameShape {
            format,
            width: w,
            height: h,
            matrix,
        } = shape;
        match (&self.picture, kind) {
            (Some(p), Background::Image) => {
                let scaled = image::DynamicImage::ImageRgb8(p.image.clone())
                    .resize_to_fill(w, h, image::imageops::FilterType::Triangle)
                    .to_rgb8();
                composite::from_rgb(format, w, h, matrix, scaled.as_raw())
                    .map_err(|e| format!("background: {e}"))
            }
            _ => Ok(composite::solid(format, w, h, matrix, argb_to_rgb(color))),
        }
    }
}

fn argb_to_rgb(c: u32) -> [u8; 3] {
    [(c >> 16) as u8, (c >> 8) as u8, c as u8]
}
