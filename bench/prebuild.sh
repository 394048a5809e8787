#!/bin/sh
# bench/prebuild.sh OUTDIR — build every binary the bench harness runs into
# OUTDIR, so that the bench runs where there is no Go toolchain and no
# source tree:
#
#   bench/prebuild.sh /tmp/bbprebuilt
#   scp -r /tmp/bbprebuilt bigbox:      # then, on bigbox:
#   bbprebuilt/harness -prebuilt bbprebuilt -out results
#
# blastbeat, node and m2handler link libzmq through cgo (CGO_ENABLED=1):
# the machine that runs them needs libzmq5 and a glibc at least as new as
# this one's (OUTDIR/BUILDINFO lists the shared libraries each needs). The
# others (harness, hello, wsload, tlsload) are pure Go, built static with
# CGO_ENABLED=0. The harness writes every config, script and certificate
# it uses itself; it reads nothing from the source tree.
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
GO=${GO:-go}

build() { # cgo name package
	echo "prebuild: $2 ($3, CGO_ENABLED=$1)"
	CGO_ENABLED=$1 "$GO" build -o "$out/$2" "$3"
}
build 1 blastbeat ./cmd/blastbeat
build 1 node ./bench/node
build 1 m2handler ./bench/m2handler
build 0 hello ./bench/hello
build 0 wsload ./bench/wsload
build 0 tlsload ./bench/tlsload
build 0 harness ./bench/harness

{
	echo "built:  $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -srm)"
	echo "go:     $("$GO" version)"
	echo "source: $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "run:    $out/harness -prebuilt $out [flags]"
	echo
	echo "shared libraries the machine that runs the bench needs (Debian: libzmq5):"
	for b in blastbeat node m2handler; do
		if command -v readelf >/dev/null; then # the direct ones
			libs=$(readelf -d "$out/$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
		else # all, with what they pull in
			libs=$(ldd "$out/$b" | awk '$1 !~ /^linux-vdso/ {printf "%s ", $1}')
		fi
		echo "  $b: $libs"
	done
} >"$out/BUILDINFO"
echo "prebuild: done: $out (see $out/BUILDINFO); run $out/harness -prebuilt $out"
