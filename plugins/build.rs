//! The workspace's build script (the rpath to libtorch), then the commit id and its
//! date for `plugin_define!` (COMMIT_ID, BUILD_REL_DATE), as gst-plugins-rs derives
//! them: from git, else Cargo.toml's `package.metadata.gstreamer.release_date`.

#[path = "../build.rs"]
mod workspace;

fn main() {
    workspace::main();
    gst_plugin_version_helper::info();
}
