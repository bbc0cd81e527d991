#!/usr/bin/env bash
# Builds the Debian package modnetmatte_<version>_amd64.deb from the release build:
# the plugin in the system GStreamer plugin folder, the `modnetmatte` program in
# /usr/bin, the libtorch libraries they load in the private folder /usr/lib/modnetmatte
# (found through RUNPATH, $ORIGIN-relative), the model and its fp16 and CPU variants in
# /usr/share/modnetmatte, licences in /usr/share/doc/modnetmatte.
#
#   bash scripts/package.sh            # target/debian/modnetmatte_<v>_amd64.deb
#   bash scripts/package.sh --cuda     # and modnetmatte-cuda_<v>_amd64.deb (1.9 GB, 2.6
#                                      # GiB installed: for your own machines, see README)
#   --no-build    package what target/release holds (after setup and a release build)
#   --out DIR     where the .deb files go (default $PACKAGE_OUT, else target/debian)
#   DEB_COMPRESS=xz|gzip|zstd|none     modnetmatte's compressor (default xz: 126 MB in
#                 about 5.5 CPU-minutes; gzip 149 MB in 40 s; zstd 136 MB in 3 s, but
#                 Debian 12's lintian calls zstd members malformed and dpkg before
#                 1.21.18 (Debian 11) cannot read them)
#   CUDA_DEB_COMPRESS=zstd|...         modnetmatte-cuda's (default zstd: 2.6 GiB of
#                 libraries would take xz most of an hour on 2 cores)
#   KEEP_WORK=1   keep the staged trees (DIR/work/debian/<package>)
#
# Where the files come from: libtorch 2.11.0 is the torch wheel in .venv (or
# $LIBTORCH), the NVIDIA libraries its `nvidia` wheels. libtorch's own libraries (BSD)
# are stripped of their static symbol table and get RUNPATH $ORIGIN; NVIDIA's are
# copied unmodified, as their licence requires (their own RUNPATH is $ORIGIN or none,
# and the folder is flat, so they find each other).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[package] %s\n' "$*"; }
die() { printf '[package] error: %s\n' "$*" >&2; exit 1; }

cuda=0
build=1
out=${PACKAGE_OUT:-target/debian}
compress=${DEB_COMPRESS:-xz}
cuda_compress=${CUDA_DEB_COMPRESS:-zstd}
while (($#)); do
  case $1 in
    --cuda) cuda=1 ;;
    --no-build) build=0 ;;
    --out) out=$2; shift ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
for tool in patchelf dpkg-deb dpkg-shlibdeps dpkg-parsechangelog strip readelf; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/setup.sh installs it)"
done

version=$(dpkg-parsechangelog -l packaging/changelog -S Version)
upstream=${version%-*}
cargo_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
[ "$upstream" = "$cargo_version" ] ||
  die "packaging/changelog is at $version, Cargo.toml at $cargo_version: add a changelog entry"
maintainer=$(dpkg-parsechangelog -l packaging/changelog -S Maintainer)

torch=$(readlink -f "${LIBTORCH:-.venv/libtorch}")
[ -f "$torch/lib/libtorch_cpu.so" ] || die "no libtorch at $torch (run scripts/setup.sh, or set LIBTORCH)"
nvidia=$(readlink -f "$torch/../nvidia")
release=${CARGO_TARGET_DIR:-target}/release
model=models/modnet_photographic.pt
fp16=models/modnet_photographic_fp16.pt
cpu_variant=models/modnet_photographic_cpu.pt
bf16=models/modnet_photographic_bf16.pt

if ((build)); then
  say "cargo build --release (the plugin and the program)"
  cargo build --release --quiet -p modnetmatte-cli -p gst-plugin-modnet
fi
# Reproducible timestamps: the changelog entry's date (set after cargo, whose build
# scripts would otherwise rebuild for it).
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l packaging/changelog -S Timestamp)
export SOURCE_DATE_EPOCH
for f in "$release/libgstmodnet.so" "$release/modnetmatte" "$model" "$fp16" "$cpu_variant" "$bf16"; do
  [ -f "$f" ] || die "$f is missing (run scripts/setup.sh and a release build, or drop --no-build)"
done

# --- which libraries go into /usr/lib/modnetmatte -----------------------------------
# A library is ours to ship when libtorch's folder or an nvidia wheel holds it;
# anything else comes from Debian (and dpkg-shlibdeps names its package). libgomp
# (GCC's OpenMP runtime, GPL-3 with the runtime exception) is taken from Debian's
# libgomp1 rather than the wheel's GCC 8 copy: the same GOMP_1.0/4.0 symbols.
lib_dirs=("$torch/lib" "$nvidia"/*/lib)
from_system=(libgomp.so.1)
find_lib() {
  local name=$1 d
  for s in "${from_system[@]}"; do if [ "$name" = "$s" ]; then return 0; fi; done
  for d in "${lib_dirs[@]}"; do
    if [ -e "$d/$name" ]; then readlink -f "$d/$name"; return 0; fi
  done
  return 0
}
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'; }
# closure FILE...: the names (one a line) of the libraries the files need, transitively,
# that we ship. Each name once, in the order found.
closure() {
  local -a queue=("$@")
  local -A seen=()
  local f name path
  while ((${#queue[@]})); do
    f=${queue[0]}
    queue=("${queue[@]:1}")
    while read -r name; do
      [ -n "$name" ] && [ -z "${seen[$name]:-}" ] || continue
      seen[$name]=1
      path=$(find_lib "$name")
      [ -n "$path" ] || continue
      echo "$name"
      queue+=("$path")
    done < <(needed "$f")
  done
}
mapfile -t cpu_libs < <(closure "$release/libgstmodnet.so" "$release/modnetmatte")
say "private libraries (CPU): ${cpu_libs[*]}"

# stage_lib NAME DIR: copies the library NAME into DIR. Ours (libtorch) stripped and
# with RUNPATH $ORIGIN; NVIDIA's unmodified.
stage_lib() {
  local name=$1 dir=$2 src
  src=$(find_lib "$name")
  [ -n "$src" ] || die "$name not found under $torch/lib or $nvidia"
  install -m644 "$src" "$dir/$name"
  case $src in
    "$nvidia"/*) ;;
    *)
      strip --strip-unneeded --remove-section=.comment "$dir/$name"
      patchelf --set-rpath '$ORIGIN' "$dir/$name"
      ;;
  esac
}

# shlibs_depends TREE OTHER FILE...: the Depends dpkg-shlibdeps computes for the ELF
# files; libraries in the tree's private folder (and in OTHER, another package's private
# folder, when not empty) are ours and bring no Depends.
shlibs_depends() {
  local tree=$1 other=$2
  shift 2
  local pkg
  pkg=$(basename "$tree")
  mkdir -p "$work/debian" "$tree/DEBIAN"
  printf 'Source: modnetmatte\n\nPackage: %s\nArchitecture: amd64\n' "$pkg" >"$work/debian/control"
  (cd "$work" && dpkg-shlibdeps -O --ignore-missing-info -T/dev/null -l"$tree/usr/lib/modnetmatte" \
    ${other:+-l"$other"} "$@" 2>"$work/shlibdeps.$pkg.log") |
    sed -n 's/^shlibs:Depends=//p'
}

# write_control TREE FIELDS: DEBIAN/control with Installed-Size.
write_control() {
  local tree=$1 fields=$2 size
  size=$(du -sk --apparent-size --exclude=DEBIAN "$tree" | cut -f1)
  mkdir -p "$tree/DEBIAN"
  printf '%s\nInstalled-Size: %s\n' "$fields" "$size" >"$tree/DEBIAN/control"
  (cd "$tree" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$tree/DEBIAN/md5sums"
  chmod 644 "$tree/DEBIAN/control" "$tree/DEBIAN/md5sums"
}

build_deb() { # build_deb TREE DEB COMPRESSOR
  local tree=$1 deb=$2 z=$3
  # Directories 755, files 644 but for programs; owned by root in the archive.
  find "$tree" -type d -exec chmod 755 {} +
  find "$tree" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  dpkg-deb --root-owner-group -Z"$z" -b "$tree" "$deb" >/dev/null
  say "$deb: $(du -h "$deb" | cut -f1) ($(du -sh --apparent-size --exclude=DEBIAN "$tree" | cut -f1) installed)"
}

doc_files() { # doc_files TREE PKG: changelog.Debian.gz, copyright
  local dir=$1/usr/share/doc/$2
  mkdir -p "$dir"
  gzip -9n <packaging/changelog >"$dir/changelog.Debian.gz"
  chmod 644 "$dir/changelog.Debian.gz"
}

mkdir -p "$out"
deb_dir=$(readlink -f "$out")
work=$deb_dir/work
rm -rf "$work"
mkdir -p "$work/debian"

# --- modnetmatte ----------------------------------------------------------------------
tree=$work/debian/modnetmatte
plugindir=$tree/usr/lib/x86_64-linux-gnu/gstreamer-1.0
private=$tree/usr/lib/modnetmatte
mkdir -p "$plugindir" "$private" "$tree/usr/bin" "$tree/usr/share/modnetmatte" \
  "$tree/usr/share/man/man1" "$tree/usr/share/lintian/overrides"
install -m644 "$release/libgstmodnet.so" "$plugindir/libgstmodnet.so"
install -m755 "$release/modnetmatte" "$tree/usr/bin/modnetmatte"
strip --strip-unneeded --remove-section=.comment "$plugindir/libgstmodnet.so" "$tree/usr/bin/modnetmatte"
# The build's RUNPATH points into the venv: replace it with the private folder.
patchelf --set-rpath '$ORIGIN/../../modnetmatte' "$plugindir/libgstmodnet.so"
patchelf --set-rpath '$ORIGIN/../lib/modnetmatte' "$tree/usr/bin/modnetmatte"
for name in "${cpu_libs[@]}"; do stage_lib "$name" "$private"; done

install -m644 "$model" "$tree/usr/share/modnetmatte/modnet_photographic.pt"
install -m644 "$fp16" "$tree/usr/share/modnetmatte/modnet_photographic_fp16.pt"
# Installed after the model: a CPU takes the variant only when it is not older.
install -m644 "$cpu_variant" "$tree/usr/share/modnetmatte/modnet_photographic_cpu.pt"
install -m644 "$bf16" "$tree/usr/share/modnetmatte/modnet_photographic_bf16.pt"
(cd "$tree/usr/share/modnetmatte" &&
  sha256sum modnet_photographic.pt modnet_photographic_fp16.pt modnet_photographic_cpu.pt \
    modnet_photographic_bf16.pt >SHA256SUMS)
chmod 644 "$tree/usr/share/modnetmatte/SHA256SUMS"

doc=$tree/usr/share/doc/modnetmatte
doc_files "$tree" modnetmatte
install -m644 packaging/copyright "$doc/copyright"
torch_info=$(ls -d "$torch"/../torch-*.dist-info | head -n1)
gzip -9n <"$torch_info/licenses/LICENSE" >"$doc/pytorch-LICENSE.gz"
gzip -9n <"$torch_info/licenses/NOTICE" >"$doc/pytorch-NOTICE.gz"
gzip -9n <"$(ls "$torch"/../nvidia_cuda_runtime-*.dist-info/licenses/License.txt | head -n1)" >"$doc/nvidia-cuda-eula.txt.gz"
cp "$tree/usr/share/modnetmatte/SHA256SUMS" "$doc/model.sha256"
chmod 644 "$doc"/*
gzip -9n <packaging/modnetmatte.1 >"$tree/usr/share/man/man1/modnetmatte.1.gz"
install -m644 packaging/lintian-overrides "$tree/usr/share/lintian/overrides/modnetmatte"
chmod 644 "$tree/usr/share/man/man1/modnetmatte.1.gz"

shlibs=$(shlibs_depends "$tree" "" "$plugindir/libgstmodnet.so" "$tree/usr/bin/modnetmatte" "$private"/*)
[ -n "$shlibs" ] || die "dpkg-shlibdeps found nothing: $(cat "$work/shlibdeps.modnetmatte.log")"
write_control "$tree" "Package: modnetmatte
Version: $version
Architecture: amd64
Maintainer: $maintainer
Depends: $shlibs, gstreamer1.0-plugins-base (>= 1.22), gstreamer1.0-plugins-good (>= 1.22)
Recommends: gstreamer1.0-plugins-ugly, gstreamer1.0-libav, gstreamer1.0-tools, gstreamer1.0-gl | gstreamer1.0-x
Suggests: modnetmatte-cuda, v4l2loopback-dkms
Section: video
Priority: optional
Description: real-time portrait matting for GStreamer (MODNet)
 The GStreamer element modnetmatte cuts the person out of live video and
 puts a new background behind them (a blur, a colour or a picture), or gives
 the person over a transparent background. The program modnetmatte turns a
 webcam into a virtual camera for video calls (with v4l2loopback), converts
 video files with their audio and shows a preview.
 .
 The network is MODNet's photographic portrait model, run on the CPU by a
 private copy of libtorch 2.11.0 in /usr/lib/modnetmatte. The package
 modnetmatte-cuda adds libtorch's CUDA library for NVIDIA GPUs."
build_deb "$tree" "$deb_dir/modnetmatte_${version}_amd64.deb" "$compress"

# --- modnetmatte-cuda -------------------------------------------------------------------
if ((cuda)); then
  ctree=$work/debian/modnetmatte-cuda
  cprivate=$ctree/usr/lib/modnetmatte
  mkdir -p "$cprivate"
  # libtorch_cuda.so's closure, and what is dlopened at run time: cuDNN's sub-libraries
  # (by libcudnn.so.9), NVRTC (by libtorch's JIT and by cuDNN's runtime-compiled engines).
  dlopened=(libcaffe2_nvrtc.so libnvrtc.so.13 libnvrtc-builtins.so.13.0)
  for f in "$nvidia"/cudnn/lib/libcudnn_*.so.9; do dlopened+=("$(basename "$f")"); done
  mapfile -t cuda_libs < <(
    { echo libtorch_cuda.so; printf '%s\n' "${dlopened[@]}"
      closure "$(find_lib libtorch_cuda.so)" $(for n in "${dlopened[@]}"; do find_lib "$n"; done); } |
      awk '!seen[$0]++' | grep -vxF -f <(printf '%s\n' "${cpu_libs[@]}"))
  say "private libraries (CUDA): ${cuda_libs[*]}"
  for name in "${cuda_libs[@]}"; do stage_lib "$name" "$cprivate"; done
  cdoc=$ctree/usr/share/doc/modnetmatte-cuda
  doc_files "$ctree" modnetmatte-cuda
  install -m644 packaging/copyright-cuda "$cdoc/copyright"
  gzip -9n <"$(ls "$torch"/../nvidia_cudnn_cu*.dist-info/licenses/License.txt | head -n1)" >"$cdoc/nvidia-cudnn-license.txt.gz"
  gzip -9n <"$(ls "$torch"/../nvidia_nccl_cu*.dist-info/licenses/License.txt | head -n1)" >"$cdoc/nvidia-nccl-license.txt.gz"
  chmod 644 "$cdoc"/*
  mkdir -p "$ctree/usr/share/lintian/overrides"
  install -m644 packaging/lintian-overrides-cuda "$ctree/usr/share/lintian/overrides/modnetmatte-cuda"
  # libcaffe2_nvrtc.so links the driver's libcuda.so.1, which no package here provides.
  cshlibs=$(shlibs_depends "$ctree" "$private" $(ls "$cprivate"/* | grep -v /libcaffe2_nvrtc.so))
  [ -n "$cshlibs" ] || die "dpkg-shlibdeps found nothing: $(cat "$work/shlibdeps.modnetmatte-cuda.log")"
  write_control "$ctree" "Package: modnetmatte-cuda
Version: $version
Architecture: amd64
Maintainer: $maintainer
Depends: modnetmatte (= $version)${cshlibs:+, $cshlibs}
Enhances: modnetmatte
Section: non-free/video
Priority: optional
Description: CUDA support for modnetmatte (libtorch CUDA, cuDNN, cuBLAS)
 libtorch 2.11.0's CUDA library and the NVIDIA CUDA 13 libraries it needs,
 in modnetmatte's private folder /usr/lib/modnetmatte. With it and an NVIDIA
 driver, the modnetmatte element (device=auto or cuda) runs the network on
 the GPU; without a driver it keeps running on the CPU.
 .
 Built locally from the PyPI wheels; see the copyright file before passing
 it on."
  build_deb "$ctree" "$deb_dir/modnetmatte-cuda_${version}_amd64.deb" "$cuda_compress"
fi
[ -n "${KEEP_WORK:-}" ] || rm -rf "$work"
