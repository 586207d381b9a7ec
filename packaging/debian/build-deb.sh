#!/usr/bin/env bash
# Builds the Debian package of protowatch: installs cargo-deb if it is missing, writes
# the man pages from the command line's definition, builds the release binary and the
# .deb, and prints the .deb's path as the last line of its output.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The version of cargo-deb this packaging was made and checked with.
CARGO_DEB_VERSION=3.8.0

if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  echo "== installing cargo-deb $CARGO_DEB_VERSION" >&2
  cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION"
fi

# The man pages: an example program renders them from clap's definition (so the binary
# carries no generator); gzip -n leaves out the time, for a reproducible package.
echo "== man pages" >&2
rm -rf target/man
cargo run --locked --quiet --example manpage -- target/man >/dev/null
gzip -9n target/man/*.1

echo "== release build and package" >&2
cargo deb --locked | tail -n 1
