# Sourced by the benchmarks: fill_tree DIR MB adds what a rootfs looks
# like to DIR: 2000 small text files under usr/share/doc and MB of large
# files under usr/lib, half random (like compressed data), half
# compressible (like binaries).
fill_tree() {
    local tree=$1 mb=$2
    for d in $(seq 1 40); do
        mkdir -p "$tree/usr/share/doc/pkg$d"
        for f in $(seq 1 50); do
            seq "$((d * f))" "$((d * f + 400))" > "$tree/usr/share/doc/pkg$d/file$f.txt"
        done
    done
    mkdir -p "$tree/usr/lib"
    for i in $(seq 1 $((mb / 32))); do
        head -c 16777216 /dev/urandom > "$tree/usr/lib/random$i.bin"
        # (yes ends on SIGPIPE, which pipefail would count as a failure)
        (set +o pipefail; yes "$(head -c 48 /dev/urandom | base64)" | head -c 16777216 > "$tree/usr/lib/text$i.so")
    done
}
