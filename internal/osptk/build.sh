#!/usr/bin/env bash
# build.sh DIR — builds the UNMODIFIED OSP Toolkit 4.33.1 (TransNexus, BSD-3)
# into DIR and prints DIR/bin, the folder holding `enroll` and `test_app`.
#
#   DIR/lib/libosptk.a      the toolkit library (src/*.c except ospnossl.c)
#   DIR/bin/enroll          the enrollment client (enroll/*.c)
#   DIR/bin/test_app        the toolkit's test application (test/test_app.c …)
#   DIR/bin/enroll.sh, openssl.cnf, test.cfg   copied from the toolkit's bin/
#
# Source: $OSPTK_SRC, else ../shared/vendor/osptoolkit-4.33.1 beside the
# repository. The source tree ships no Makefiles (only Windows project files
# and a developer makefile for Solaris), so this calls gcc directly. No
# source file is patched or copied: only compiler flags are chosen:
#   -DOSP_SDK              client build (the server-side XML encoders do not
#                          compile and are not needed by clients)
#   -D_GNU_SOURCE -D_XOPEN_SOURCE=700
#                          glibc's 6-argument gethostbyname_r (ospossys.h
#                          selects it under _XOPEN_SOURCE)
#   -D_POSIX_THREADS -D_REENTRANT
#                          the POSIX thread layer of ospossys.h
#   -w -O0 -g              old C with many warnings; no optimisation, as
#                          the least likely to turn latent undefined
#                          behaviour into a different program.
# src/ospnossl.c is the no-SSL stub of the SSL wrapper: it defines the same
# functions as src/ospopenssl.c, so only one of the two can be linked; the
# OpenSSL one is what real deployments use.
#
# Idempotent: a finished build (DIR/.stamp naming this script's hash, the
# source folder and its files' names and sizes) is reused; a concurrent second
# run waits on a lock. Installs gcc, libssl-dev, libutf8proc-dev (and the
# openssl command, which the tests use as bin/enroll.sh does) with apt only
# when they are missing.
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
src=${OSPTK_SRC:-$repo/../shared/vendor/osptoolkit-4.33.1}
if [ ! -f "$src/enroll/osptnep.c" ] || [ ! -f "$src/src/ospopenssl.c" ]; then
	echo "osptk: no OSP Toolkit source at $src (set OSPTK_SRC)" >&2
	exit 1
fi
src=$(cd "$src" && pwd)

mkdir -p "$1"
out=$(cd "$1" && pwd)
# what the build depends on: this script, the source folder, and its files'
# names and sizes (cheap, and stable across copies of shared/)
stamp="$(sha256sum "$0" | cut -d' ' -f1) $(cd "$src" && find . -type f -printf '%P %s\n' | LC_ALL=C sort | sha256sum | cut -d' ' -f1) $src"

# one build at a time per DIR (parallel `go test` processes share the cache)
exec 9>"$out/.lock"
flock 9

if [ -x "$out/bin/enroll" ] && [ -x "$out/bin/test_app" ] && [ -f "$out/.stamp" ] &&
	[ "$(cat "$out/.stamp")" = "$stamp" ]; then
	echo "$out/bin"
	exit 0
fi

missing=()
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v openssl >/dev/null 2>&1 || missing+=(openssl) # the tests make CSRs as bin/enroll.sh does
[ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
[ -f /usr/include/utf8proc.h ] || missing+=(libutf8proc-dev)
if [ ${#missing[@]} -gt 0 ]; then
	echo "osptk: installing ${missing[*]} with apt-get" >&2
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >&2; then
		echo "osptk: cannot install ${missing[*]} (need root and the Debian archive)" >&2
		exit 1
	fi
fi

work="$out/.work.$$"
rm -rf "$work"
mkdir -p "$work/obj/src" "$work/obj/enroll" "$work/obj/test" "$work/lib" "$work/bin"
trap 'rm -rf "$work"' EXIT
log="$out/build.log"
: >"$log"

cflags=(-w -O0 -g -D_GNU_SOURCE -D_XOPEN_SOURCE=700 -D_POSIX_THREADS -D_REENTRANT -DOSP_SDK -I"$src/include")
libs=(-lssl -lcrypto -lutf8proc -lpthread -lm)

cc() { # cc OUT SRC EXTRA...
	local o=$1 c=$2
	shift 2
	if ! gcc "${cflags[@]}" "$@" -c "$c" -o "$o" >>"$log" 2>&1; then
		tail -30 "$log" >&2
		echo "osptk: compiling $c failed, see $log" >&2
		exit 1
	fi
}

for c in "$src"/src/*.c; do
	b=$(basename "$c" .c)
	[ "$b" = ospnossl ] && continue
	cc "$work/obj/src/$b.o" "$c"
done
ar rcs "$work/lib/libosptk.a" "$work"/obj/src/*.o

for c in "$src"/enroll/*.c; do
	cc "$work/obj/enroll/$(basename "$c" .c).o" "$c" -I"$src/enroll"
done
for b in test_app nonblocking syncque; do
	cc "$work/obj/test/$b.o" "$src/test/$b.c" -I"$src/test"
done

link() { # link OUT OBJS...
	local o=$1
	shift
	if ! gcc -o "$o" "$@" "$work/lib/libosptk.a" "${libs[@]}" >>"$log" 2>&1; then
		tail -30 "$log" >&2
		echo "osptk: linking $o failed, see $log" >&2
		exit 1
	fi
}
link "$work/bin/enroll" "$work"/obj/enroll/*.o
link "$work/bin/test_app" "$work"/obj/test/*.o
cp "$src/bin/enroll.sh" "$src/bin/openssl.cnf" "$src/bin/test.cfg" "$work/bin/"
chmod u+w "$work/bin"/* # shared/ is read-only in CI; the copies need not be

rm -rf "$out/bin" "$out/lib"
mv "$work/bin" "$out/bin"
mv "$work/lib" "$out/lib"
printf '%s\n' "$stamp" >"$out/.stamp"
echo "$out/bin"
