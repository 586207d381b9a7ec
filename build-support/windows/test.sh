#!/usr/bin/env bash
# Builds protowatch for x86_64-pc-windows-gnu on Linux and runs its tests under Wine:
# the library's unit tests, the parser, config, watcher and rotation tests (the Windows
# binary started by the Windows tests), then the Windows protowatch.exe end to end
# against the SMTP server and fake Bot API on Linux. See README.md beside this file.
#
# Needs Debian's rustc-web, cargo-web, rust-web-src, gcc-mingw-w64-x86-64, wine, wine64
# (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."

target=x86_64-pc-windows-gnu
target_dir=target/windows
support_dir=$target_dir/wine-support
mkdir -p "$support_dir"

# Wine 8.0 lacks bcryptprimitives.dll, which Rust's standard library imports.
x86_64-w64-mingw32-gcc -O2 -shared -o "$support_dir/bcryptprimitives.dll" \
  build-support/windows/bcryptprimitives.c build-support/windows/bcryptprimitives.def -ladvapi32

# rustup's proxies come first on PATH and have no Windows target: use Debian's toolchain,
# which can build the standard library for it from source.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
export WINEDEBUG=-all WINEPATH="$(realpath "$support_dir")"
# A fresh Wine prefix would offer to install Mono and Gecko, which nothing here needs.
export WINEDLLOVERRIDES="mscoree,mshtml="
cargo_win=(/usr/bin/cargo --locked)
flags=(--target "$target" -Zbuild-std=std,panic_abort --target-dir "$target_dir")

echo "== Windows build"
"${cargo_win[@]}" build "${flags[@]}"
# Beside the executables too: the folder of an .exe is searched first for its DLLs, also
# when the service control manager starts it (with an environment without WINEPATH).
out_dir="$target_dir/$target/debug"
mkdir -p "$out_dir/deps"
cp "$support_dir/bcryptprimitives.dll" "$out_dir/"
cp "$support_dir/bcryptprimitives.dll" "$out_dir/deps/"
echo "== Windows tests under Wine"
# The random model test is left to the Linux run, which drives the watcher the Windows
# way too (files open only while reading): under Wine, file indexes are the Linux inodes,
# reused at once, which NTFS's sequence numbers prevent, and the model cannot tell the
# ambiguities that follows from bugs. Its named trap tests run here.
"${cargo_win[@]}" test "${flags[@]}" --lib --test parser_fixtures --test config \
  --test tailer_model --test watcher_modes --test rotation --test routes_cli --test throttle_pacing -- \
  --skip every_complete_line_once_in_order
echo "== protowatch.exe end to end (from the Linux side)"
# With the toolchain of the Linux tests, whose build this reuses.
PROTOWATCH_WINDOWS_EXE="$(realpath "$target_dir/$target/debug/protowatch.exe")" \
  env -u RUSTC -u RUSTDOC -u RUSTC_BOOTSTRAP cargo test --locked --test windows_exe -- --include-ignored --nocapture --test-threads=1
