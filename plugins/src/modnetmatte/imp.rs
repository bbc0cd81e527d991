//! The `modnetmatte` subclass of GstVideoFilter: the GObject and BaseTransform glue.
//! Properties live in `settings.rs`, caps in `caps.rs`, what runs between start and
//! stop in `state.rs` (whose typed errors become element errors here, in `post`),
//! the statistics in `stats.rs`; ARCHITECTURE.md maps the rest.

use std::sync::{LazyLock, Mutex, MutexGuard};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use super::buffers::Infos;
use super::caps;
use super::context::{CAT, Ctx, StreamError};
use super::settings::{self, Settings};
use super::state::State;
use super::stats::Stats;
use crate::formats::to_pixel_format;

pub struct ModnetMatte {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    stats: Mutex<Stats>,
}

impl Default for ModnetMatte {
    fn default() -> Self {
        Self {
            settings: Mutex::new(Settings::from_param_specs()),
            state: Mutex::new(None),
            stats: Mutex::new(Stats::default()),
        }
    }
}

/// Locks without panicking on a poisoned mutex: the data is plain values.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ModnetMatte {
    /// Runs `f` on the running stream with its context (settings as they are now).
    fn with_state<R>(
        &self,
        f: impl FnOnce(&mut State, &Ctx<'_>) -> Result<R, StreamError>,
    ) -> Result<R, gst::FlowError> {
        let settings = lock(&self.settings).clone();
        let obj = self.obj();
        let mut guard = lock(&self.state);
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let ctx = Ctx {
            obj: &obj,
            settings: &settings,
            stats: &self.stats,
        };
        f(state, &ctx).map_err(|e| self.post(e))
    }

    /// The one place where the stream's errors become element errors on the bus.
    fn post(&self, e: StreamError) -> gst::FlowError {
        match e {
            StreamError::NotNegotiated => {
                gst::warning!(CAT, imp = self, "a buffer arrived before any caps");
                return gst::FlowError::NotNegotiated;
            }
            StreamError::Worker(e) => {
                gst::element_imp_error!(self, gst::CoreError::Failed, ("{e}"))
            }
            StreamError::Matting(e) => {
                gst::element_imp_error!(self, gst::StreamError::Failed, ("matting failed: {e}"))
            }
            StreamError::Background(e) => {
                gst::element_imp_error!(self, gst::StreamError::Failed, ("{e}"))
            }
            StreamError::Output(e) => {
                gst::element_imp_error!(self, gst::StreamError::Failed, ("output: {e}"))
            }
        }
        gst::FlowError::Error
    }

    /// Pushes every frame still held (EOS, new caps): nothing that came in is lost.
    fn drain(&self) {
        let outputs = self
            .with_state(|state, ctx| Ok(state.drain(ctx)))
            .unwrap_or_default();
        gst::debug!(CAT, imp = self, "draining {} frames", outputs.len());
        for out in outputs {
            if let Err(e) = self.obj().src_pad().push(out) {
                gst::debug!(CAT, imp = self, "push at drain: {e:?}");
                break;
            }
        }
    }

    /// Whether upstream says it is live (a camera): then frames are never held back
    /// to fill a batch. No answer counts as not live (a file, an appsrc).
    fn upstream_is_live(&self) -> bool {
        let mut q = gst::query::Latency::new();
        self.obj().sink_pad().peer_query(&mut q) && q.result().0
    }
}

#[glib::object_subclass]
impl ObjectSubclass for ModnetMatte {
    const NAME: &'static str = "GstModnetMatte";
    type Type = super::ModnetMatte;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for ModnetMatte {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(settings::properties);
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if lock(&self.settings).set(pspec.name(), value) {
            gst::debug!(CAT, imp = self, "{} set", pspec.name());
        } else {
            gst::warning!(CAT, imp = self, "no writable property {}", pspec.name());
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            return lock(&self.stats).to_structure().to_value();
        }
        lock(&self.settings)
            .get(pspec.name())
            .unwrap_or_else(|| pspec.default_value().clone())
    }
}

impl GstObjectImpl for ModnetMatte {}

impl ElementImpl for ModnetMatte {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "MODNet background replacement",
                "Filter/Effect/Video",
                "Cuts the person out of video with the MODNet portrait-matting network and replaces the background (blur, colour or picture), or outputs the matte or straight alpha",
                "modnetmatte developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(caps::pad_templates);
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for ModnetMatte {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::NeverInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn submit_input_buffer(
        &self,
        _is_discont: bool,
        inbuf: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.with_state(|state, ctx| state.submit(ctx, inbuf))?;
        Ok(gst::FlowSuccess::Ok)
    }

    fn generate_output(
        &self,
    ) -> Result<gst_base::subclass::base_transform::GenerateOutputSuccess, gst::FlowError> {
        use gst_base::subclass::base_transform::GenerateOutputSuccess;
        Ok(
            match self.with_state(|state, ctx| state.next_output(ctx))? {
                Some(out) => GenerateOutputSuccess::Buffer(out),
                None => GenerateOutputSuccess::NoOutput,
            },
        )
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            // Frames held back (in flight, a batch, OFD) go out before the stream ends
            // or changes.
            gst::EventView::Eos(_) | gst::EventView::Caps(_) => self.drain(),
            gst::EventView::FlushStop(_) => {
                if let Some(state) = lock(&self.state).as_mut() {
                    state.flush();
                }
            }
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn src_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Qos(q) = event.view() {
            let (_kind, _proportion, diff, timestamp) = q.get();
            if let (Some(ts), Some(state)) = (timestamp, lock(&self.state).as_mut()) {
                // As GstBaseTransform: a late buffer pushes the deadline twice its lateness.
                let jitter = if diff > 0 { 2 * diff } else { diff };
                let earliest = if jitter >= 0 {
                    ts.checked_add(gst::ClockTime::from_nseconds(jitter as u64))
                } else {
                    ts.checked_sub(gst::ClockTime::from_nseconds(jitter.unsigned_abs()))
                };
                state.earliest = earliest.or(Some(ts));
                gst::debug!(
                    CAT,
                    imp = self,
                    "QoS: diff {diff} ns, earliest {:?}",
                    state.earliest
                );
            }
        }
        self.parent_src_event(event)
    }

    /// On the CUDA device path, offers upstream a pool of page-locked buffers: frames
    /// written there go to the GPU with no copy into staging memory.
    fn propose_allocation(
        &self,
        decide_query: Option<&gst::query::Allocation>,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        self.parent_propose_allocation(decide_query, query)?;
        let (ordinal, batch, in_flight) = lock(&self.state).as_ref().map_or((None, 1, 1), |s| {
            (s.pinned_ordinal(), s.batch_size as u32, s.in_flight as u32)
        });
        let (Some(ordinal), (Some(caps), _)) = (ordinal, query.get()) else {
            return Ok(());
        };
        let caps = caps.to_owned();
        let info = gst_video::VideoInfo::from_caps(&caps)
            .map_err(|_| gst::loggable_error!(CAT, "allocation query with unusable caps"))?;
        let size = u32::try_from(info.size())
            .map_err(|_| gst::loggable_error!(CAT, "frame too large for a pool"))?;
        let pool = crate::pinnedpool::PinnedBufferPool::new(Some(ordinal));
        let mut config = pool.config();
        // Frames in flight hold their buffer until their result is back: a batch
        // being collected, one per job in flight, and two more.
        let min = batch * (in_flight + 1) + 2;
        config.set_params(Some(&caps), size, min, 0);
        pool.set_config(config)
            .map_err(|_| gst::loggable_error!(CAT, "the page-locked pool refused its config"))?;
        // First in the list, so upstream takes it over any pool proposed before.
        if query.allocation_pools().count() > 0 {
            query.set_nth_allocation_pool(0, Some(&pool), size, min, 0);
        } else {
            query.add_allocation_pool(Some(&pool), size, min, 0);
        }
        gst::debug!(
            CAT,
            imp = self,
            "offered a page-locked pool: {min}+ buffers of {size} bytes"
        );
        Ok(())
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        let handled = BaseTransformImplExt::parent_query(self, direction, query);
        if handled
            && direction == gst::PadDirection::Src
            && let gst::QueryViewMut::Latency(q) = query.view_mut()
        {
            let add = lock(&self.state)
                .as_ref()
                .map_or(gst::ClockTime::ZERO, State::added_latency);
            let (live, min, max) = q.result();
            q.set(live, min + add, max.map(|m| m + add));
            gst::debug!(
                CAT,
                imp = self,
                "latency: adding {add} (every-frame: frames in flight and OFD; realtime: the wait for a frame's own matte)"
            );
        }
        handled
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let (state, stats) = State::start(&settings, &self.obj())?;
        *lock(&self.stats) = stats;
        *lock(&self.state) = Some(state);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Dropping the state frees the model and every buffer it held.
        *lock(&self.state) = None;
        gst::info!(
            CAT,
            imp = self,
            "stopped: {}",
            lock(&self.stats).to_structure()
        );
        Ok(())
    }

    fn transform_caps(
        &self,
        direction: gst::PadDirection,
        caps: &gst::Caps,
        filter: Option<&gst::Caps>,
    ) -> Option<gst::Caps> {
        let output = lock(&self.state)
            .as_ref()
            .map(State::output)
            .unwrap_or_else(|| lock(&self.settings).look.output);
        let out = caps::transform(output, direction == gst::PadDirection::Sink, caps, filter);
        gst::debug!(
            CAT,
            imp = self,
            "transformed {caps} ({direction:?}) into {out:?}"
        );
        out
    }
}

impl VideoFilterImpl for ModnetMatte {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        if to_pixel_format(in_info.format()).is_none() {
            return Err(gst::loggable_error!(
                CAT,
                "unsupported input format {:?}",
                in_info.format()
            ));
        }
        // Before taking the state lock: the query travels upstream.
        let live = self.upstream_is_live();
        let run = lock(&self.settings).run.clone();
        let mut guard = lock(&self.state);
        let state = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps set before start"))?;
        let latency = state.added_latency();
        let infos = Infos {
            input: in_info.clone(),
            output: out_info.clone(),
        };
        let what = state
            .set_caps(infos, live, &run)
            .map_err(|e| gst::loggable_error!(CAT, "{e}"))?;
        let latency_changed = state.added_latency() != latency;
        {
            let mut stats = lock(&self.stats);
            stats.batch = state.batch_size as u32;
            stats.pacing = state.pacing();
        }
        drop(guard);
        gst::info!(CAT, imp = self, "{incaps} -> {outcaps}: {what}");
        if latency_changed {
            // The pipeline asks again and hears what these caps add.
            let _ = self
                .obj()
                .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
        }
        Ok(())
    }
}
