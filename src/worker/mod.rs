//! The threads that own the network's time: `ordered` runs every job in order with a
//! bounded number in flight (every-frame pacing, the device path); `newest` always
//! takes the newest frame and drops the one still waiting (realtime pacing).

pub mod newest;
pub mod ordered;
