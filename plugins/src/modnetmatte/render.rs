//! Making output frames, for every path: the caps' video infos, what the output is
//! made of (`OutputSpec`, from the settings now, with the background built and
//! cached), and CPU compositing of an input buffer with its final matte.

use std::time::Instant;

use gst_video::VideoFrameRef;
use modnetmatte::composite::spec::{BackgroundSource, OutputKind, OutputSpec};
use modnetmatte::{FrameShape, composite};

use super::Output;
use super::background::{Backgrounds, Notes};
use super::buffers::{self, Infos};
use super::context::{CAT, Ctx, StreamError};
use super::stats::ms;
use crate::formats::{to_pixel_format, yuv_matrix};

pub(super) struct Render {
    /// Fixed at start: the caps depend on it.
    pub(super) output: Output,
    backgrounds: Backgrounds,
    infos: Option<Infos>,
}

impl Render {
    pub(super) fn new(output: Output, backgrounds: Backgrounds) -> Self {
        Self {
            output,
            backgrounds,
            infos: None,
        }
    }

    pub(super) fn set_caps(&mut self, infos: Infos) {
        self.infos = Some(infos);
    }

    /// The caps' video infos; a buffer before caps is not negotiated.
    pub(super) fn infos(&self) -> Result<&Infos, StreamError> {
        self.infos.as_ref().ok_or(StreamError::NotNegotiated)
    }

    /// The input caps' video info, if caps were set.
    pub(super) fn input_info(&self) -> Option<&gst_video::VideoInfo> {
        self.infos.as_ref().map(|i| &i.input)
    }

    /// What the output should be made of the next frame, from the settings now.
    pub(super) fn spec(&mut self, ctx: &Ctx<'_>) -> Result<OutputSpec, StreamError> {
        let infos = self.infos()?.clone();
        let format = to_pixel_format(infos.input.format())
            .ok_or_else(|| StreamError::Output(format!("{:?} in", infos.input.format())))?;
        let output = match self.output {
            Output::Composite => OutputKind::Composite,
            Output::Alpha => {
                OutputKind::Alpha(to_pixel_format(infos.output.format()).ok_or_else(|| {
                    StreamError::Output(format!("{:?} out", infos.output.format()))
                })?)
            }
            Output::Matte => OutputKind::Matte,
        };
        let mut background = BackgroundSource::Blur(ctx.settings.look.blur_radius);
        if self.output == Output::Composite {
            let shape = FrameShape {
                format,
                width: infos.input.width(),
                height: infos.input.height(),
                matrix: yuv_matrix(&infos.input),
            };
            let mut notes = Notes::default();
            let frame = self.backgrounds.frame(ctx.settings, shape, &mut notes);
            report(ctx, notes);
            if let Some(frame) = frame.map_err(StreamError::Background)? {
                background = BackgroundSource::Frame(frame);
            }
        }
        Ok(OutputSpec {
            output,
            background,
            threshold: ctx.settings.matte.threshold,
            smoothing: ctx.settings.matte.temporal_smoothing as f32,
        })
    }

    /// The CPU path's output buffer for an input buffer and its final matte.
    pub(super) fn composite(
        &mut self,
        ctx: &Ctx<'_>,
        inbuf: &gst::Buffer,
        alpha: &[f32],
    ) -> Result<gst::Buffer, StreamError> {
        let t0 = Instant::now();
        let spec = self.spec(ctx)?;
        let infos = self.infos()?;
        let vin = VideoFrameRef::from_buffer_ref_readable(inbuf.as_ref(), &infos.input)
            .map_err(|_| StreamError::Output("input buffer does not match the caps".into()))?;
        let frame = buffers::map_input(&vin, &infos.input).map_err(StreamError::Output)?;
        let (outbuf, ()) = buffers::new_output(inbuf, &infos.output, |out| {
            composite::output_frame(&frame, alpha, &spec, out).map_err(|e| e.to_string())
        })
        .map_err(StreamError::Output)?;
        let compositing = t0.elapsed();
        let mut st = ctx.stats();
        st.add_composited(compositing);
        gst::log!(
            CAT,
            obj = ctx.obj,
            "frame {} out, compositing {:.1} ms",
            st.frames,
            ms(compositing)
        );
        Ok(outbuf)
    }
}

/// Posts what building the background had to say.
fn report(ctx: &Ctx<'_>, notes: Notes) {
    if let Some(warning) = notes.warning {
        gst::element_warning!(ctx.obj, gst::ResourceError::OpenRead, ("{warning}"));
    }
    if let Some(what) = notes.rebuilt {
        gst::debug!(CAT, obj = ctx.obj, "background rebuilt: {what}");
    }
}
