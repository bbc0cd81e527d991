#!/usr/bin/env bash
# The Debian package as a user gets it (called by scripts/test.sh, so CI runs it):
# builds it (scripts/package.sh), extracts it into a fresh temporary root with
# `dpkg-deb -x`, and there, in an environment holding nothing of this checkout (env -i:
# PATH and HOME only, no LD_LIBRARY_PATH, no MODNETMATTE_MODEL; the plugin and the
# model found through GST_PLUGIN_SYSTEM_PATH and XDG_DATA_DIRS pointed into the root):
#   1. RUNPATHs are $ORIGIN-relative, and `ldd` resolves every library of the plugin,
#      the program and the private folder inside the root or the system;
#   2. gst-inspect-1.0 finds modnetmatte in the root's plugin file;
#   3. gst-launch-1.0 mattes 3 frames of the photo with the packaged model, the CPU
#      chosen by device=auto with its reason in the log; LD_DEBUG=libs shows every
#      library it loaded came from the root or the system;
#   4. the root's `modnetmatte file` converts a 6-frame clip (colour background);
#   5. lintian on the package: no errors.
# PACKAGE_TEST_CUDA=1 also builds modnetmatte-cuda (2.8 GB installed; not in CI), extracts
# it into the same root and checks that ldd resolves libtorch_cuda.so and everything it
# needs there or in the system, and that with a stand-in libcuda.so.1 (no GPU here)
# device=auto makes the plugin dlopen the root's libtorch_cuda.so by RUNPATH.
# PACKAGE_TEST_BUILD=0 tests the .deb already in target/debian (or $PACKAGE_OUT) as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[package-test] %s\n' "$*"; }
fail() { printf '[package-test] FAIL: %s\n' "$*" >&2; exit 1; }
start=$SECONDS
checkout=$PWD

cuda=${PACKAGE_TEST_CUDA:-0}
if [ "${PACKAGE_TEST_BUILD:-1}" != 0 ]; then
  bash scripts/package.sh $([ "$cuda" = 1 ] && echo --cuda)
fi
version=$(dpkg-parsechangelog -l packaging/changelog -S Version)
deb=${PACKAGE_OUT:-target/debian}/modnetmatte_${version}_amd64.deb
[ -f "$deb" ] || fail "$deb missing"
built=$SECONDS

tmp=$(mktemp -d /tmp/modnetmatte-package.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
dpkg-deb -x "$deb" "$root"
cuda_deb=${PACKAGE_OUT:-target/debian}/modnetmatte-cuda_${version}_amd64.deb
[ "$cuda" = 1 ] || cuda_deb=/nonexistent
mkdir -p "$tmp/home"
plugins=$root/usr/lib/x86_64-linux-gnu/gstreamer-1.0
private=$root/usr/lib/modnetmatte
system_plugins=$(pkg-config --variable=pluginsdir gstreamer-1.0)
# What the packaged files run in: nothing from this checkout or the caller's shell.
run() {
  env -i PATH=/usr/bin:/bin HOME="$tmp/home" GST_REGISTRY="$tmp/registry.bin" \
    GST_PLUGIN_SYSTEM_PATH="$plugins:$system_plugins" XDG_DATA_DIRS="$root/usr/share" "$@"
}

# 1. RUNPATH and ldd.
rpath() { readelf -d "$1" | sed -n 's/.*(\(RPATH\|RUNPATH\)).*\[\(.*\)\]$/\2/p'; }
[ "$(rpath "$plugins/libgstmodnet.so")" = '$ORIGIN/../../modnetmatte' ] || fail "plugin RUNPATH: $(rpath "$plugins/libgstmodnet.so")"
[ "$(rpath "$root/usr/bin/modnetmatte")" = '$ORIGIN/../lib/modnetmatte' ] || fail "program RUNPATH: $(rpath "$root/usr/bin/modnetmatte")"
# resolved_outside FILE: each library ldd resolves outside the root and the system
# folders (or not at all).
resolved_outside() {
  run ldd "$1" | awk -v root="$root" '
    /not found/ { print; next }
    /=>/ { p = $3; if (index(p, root "/") != 1 && p !~ /^\/(usr\/)?lib(64|32|x32)?\//) print }'
}
elves=("$plugins/libgstmodnet.so" "$root/usr/bin/modnetmatte" "$private"/*)
for f in "${elves[@]}"; do
  bad=$(resolved_outside "$f")
  [ -z "$bad" ] || fail "ldd ${f#"$root"}: $bad"
  if run ldd "$f" | grep -F "$checkout"; then fail "ldd ${f#"$root"} resolves into the checkout"; fi
  r=$(rpath "$f")
  case $r in "" | '$ORIGIN' | '${ORIGIN}' | '$ORIGIN:' | '$ORIGIN/../../modnetmatte' | '$ORIGIN/../lib/modnetmatte') ;;
    *) fail "${f#"$root"} has search path $r" ;;
  esac
done
for lib in libtorch_cpu.so libc10.so; do
  got=$(run ldd "$plugins/libgstmodnet.so" | awk -v lib="$lib" '$1 == lib { print $3 }')
  [ "$(readlink -f "$got")" = "$private/$lib" ] || fail "$lib resolves to $got, not $private/$lib"
done
say "ldd: ${#elves[@]} files, every library inside the root or the system"

# 2. gst-inspect-1.0.
run gst-inspect-1.0 modnetmatte >"$tmp/inspect.txt" 2>&1 || { cat "$tmp/inspect.txt"; fail "gst-inspect-1.0 modnetmatte"; }
grep -qF "$plugins/libgstmodnet.so" "$tmp/inspect.txt" || fail "gst-inspect-1.0 shows another plugin file: $(grep Filename "$tmp/inspect.txt")"
say "gst-inspect-1.0 modnetmatte: $(grep -m1 'Filename' "$tmp/inspect.txt" | sed 's/  */ /g')"

# 3. gst-launch-1.0: the photo, 3 frames, the matte out; the model found through XDG_DATA_DIRS.
photo=$checkout/data/images/astronaut.png
[ -f "$photo" ] || fail "$photo missing (scripts/setup.sh)"
run GST_DEBUG=modnetmatte:4 LD_DEBUG=libs LD_DEBUG_OUTPUT="$tmp/ld" gst-launch-1.0 -q \
  filesrc location="$photo" ! pngdec ! videoconvert ! videoscale ! video/x-raw,width=256,height=256 \
  ! imagefreeze num-buffers=3 ! modnetmatte output=matte ref-size=256 \
  ! filesink location="$tmp/matte.gray" >"$tmp/launch.log" 2>&1 || { tail -20 "$tmp/launch.log"; fail "gst-launch-1.0"; }
size=$(stat -c %s "$tmp/matte.gray")
[ "$size" = $((3 * 256 * 256)) ] || fail "gst-launch-1.0 wrote $size bytes, not 3 mattes of 256x256"
# The person is there: a good share of the matte is foreground, a good share background.
python3 - "$tmp/matte.gray" <<'EOF' || fail "the matte is not a person's"
import sys
data = open(sys.argv[1], "rb").read()[: 256 * 256]
fg = sum(b > 200 for b in data) / len(data)
bg = sum(b < 55 for b in data) / len(data)
print(f"[package-test] matte: {fg:.0%} foreground, {bg:.0%} background")
sys.exit(0 if 0.1 < fg < 0.9 and 0.1 < bg < 0.9 else 1)
EOF
grep -q "modnet_photographic.pt" "$tmp/launch.log" || fail "the log does not name the model"
grep -qF "$root/usr/share/modnetmatte/modnet_photographic.pt" "$tmp/launch.log" || fail "not the packaged model: $(grep -m1 'modnet_photographic' "$tmp/launch.log")"
# precision=auto: the bf16 variant on a CPU with AMX or AVX512-BF16, the fp32 one elsewhere.
grep -Eq "CPU variant modnet_photographic_(cpu|bf16).pt" "$tmp/launch.log" || fail "a CPU did not take a packaged CPU variant"
grep -q "auto: using the CPU: " "$tmp/launch.log" || grep -q "auto: libtorch sees" "$tmp/launch.log" || fail "no device line in the log"
say "device: $(grep -o 'auto: [^,]*' "$tmp/launch.log" | head -n1)"
# Every library the process loaded (LD_DEBUG's "calling init" lines; the plugin scanner
# writes its own files too): from the root or the system, none from the checkout.
loaded=$(cat "$tmp"/ld.* | sed -n 's/.*calling init: //p' | while read -r p; do realpath -m "$p"; done | sort -u)
grep -qF "$private/libtorch_cpu.so" <<<"$loaded" || fail "libtorch_cpu.so not loaded from $private"
outside=$(awk -v root="$root" 'index($0, root "/") != 1 && $0 !~ /^\/(usr\/)?lib(64)?\//' <<<"$loaded")
[ -z "$outside" ] || fail "loaded from outside the root and the system: $outside"
say "LD_DEBUG=libs: $(wc -l <<<"$loaded") libraries loaded, all from the root or the system"

# 4. The program: `modnetmatte file` on a 6-frame clip of the real photos, green behind.
gst-launch-1.0 -q multifilesrc location="$checkout/data/clip/frame_%04d.jpg" index=0 stop-index=5 \
  caps=image/jpeg,framerate=30/1 ! jpegdec ! videoscale ! video/x-raw,width=320,height=180 \
  ! videoconvert ! x264enc ! mp4mux ! filesink location="$tmp/in.mp4"
run "$root/usr/bin/modnetmatte" file "$tmp/in.mp4" "$tmp/out.mp4" -b green --ref-size 256 \
  >"$tmp/file.log" 2>&1 || { tail -20 "$tmp/file.log"; fail "modnetmatte file"; }
run gst-launch-1.0 -q filesrc location="$tmp/out.mp4" ! decodebin ! videoconvert \
  ! video/x-raw,format=RGB,width=320,height=180 ! filesink location="$tmp/out.rgb"
python3 - "$tmp/out.rgb" <<'EOF' || fail "modnetmatte file: wrong output"
import sys
data = open(sys.argv[1], "rb").read()
frame = 320 * 180 * 3
n = len(data) // frame
assert len(data) == n * frame and n == 6, f"{n} frames"
px = data[:frame]
green = sum(1 for i in range(0, frame, 3) if px[i] < 80 and px[i + 1] > 170 and px[i + 2] < 80) / (frame // 3)
print(f"[package-test] modnetmatte file: {n} frames, {green:.0%} of frame 0 green")
# The colour behind, and the person (not green) in front of it.
sys.exit(0 if 0.2 < green < 0.98 else 1)
EOF

# CUDA (optional): the second package in the same root.
if [ "$cuda" = 1 ]; then
  [ -f "$cuda_deb" ] || fail "$cuda_deb missing"
  dpkg-deb -x "$cuda_deb" "$root"
  for f in "$private"/*; do
    # The driver's libcuda.so.1 (libcaffe2_nvrtc.so links it) comes with the NVIDIA driver.
    bad=$(resolved_outside "$f" | grep -v '^[[:space:]]*libcuda\.so\.1 => not found' || true)
    [ -z "$bad" ] || fail "ldd ${f#"$root"}: $bad"
  done
  say "CUDA: ldd of $(ls "$private" | wc -l) private libraries, every one resolved inside the root or the system"
  # A stand-in driver (no symbols): libtorch_cuda.so then loads, and finds no device.
  echo 'int modnetmatte_no_driver;' >"$tmp/cuda.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$private/libcuda.so.1" "$tmp/cuda.c"
  rm -f "$tmp"/ld.*
  run GST_DEBUG=modnetmatte:4 LD_DEBUG=libs LD_DEBUG_OUTPUT="$tmp/ld" gst-launch-1.0 -q \
    videotestsrc num-buffers=1 ! video/x-raw,width=64,height=64 ! modnetmatte ref-size=64 ! fakesink \
    >"$tmp/cuda.log" 2>&1 || { tail -20 "$tmp/cuda.log"; fail "gst-launch-1.0 with modnetmatte-cuda"; }
  loaded=$(cat "$tmp"/ld.* | sed -n 's/.*calling init: //p' | while read -r p; do realpath -m "$p"; done | sort -u)
  grep -qxF "$private/libtorch_cuda.so" <<<"$loaded" || fail "libtorch_cuda.so was not loaded from $private"
  outside=$(awk -v root="$root" 'index($0, root "/") != 1 && $0 !~ /^\/(usr\/)?lib(64)?\//' <<<"$loaded")
  [ -z "$outside" ] || fail "loaded from outside the root and the system: $outside"
  say "CUDA: device=auto dlopened $private/libtorch_cuda.so ($(grep -c "^$private/" <<<"$loaded") private libraries loaded); $(grep -o 'auto: [^,]*' "$tmp/cuda.log" | head -n1)"
  rm -f "$private/libcuda.so.1"
fi

# 5. lintian (no errors; the warnings it may give are explained in the README).
if command -v lintian >/dev/null; then
  for d in "$deb" $([ -f "$cuda_deb" ] && echo "$cuda_deb"); do
    # modnetmatte-cuda is zstd-compressed (CUDA_DEB_COMPRESS), which Debian 12's dpkg
    # installs but its lintian calls malformed (an archive rule, not the contents).
    suppress=()
    case $(ar t "$d" | sed -n 2p) in
      *.zst) suppress=(--suppress-tags malformed-deb-archive) ;;
    esac
    status=0
    report=$(lintian --fail-on error --tag-display-limit 0 "${suppress[@]}" "$d" 2>&1) || status=$?
    grep -v '^running with root' <<<"$report" || true
    ((status == 0)) || fail "lintian reports errors on $d"
  done
  say "lintian: no errors"
else
  fail "lintian not installed (scripts/setup.sh installs it)"
fi
say "passed in $((SECONDS - start)) s (packaging $((built - start)) s)"
