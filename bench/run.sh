#!/usr/bin/env bash
# ./dev bench: runs the benchmarks of bench/README.md.
echo "no benchmarks yet" >&2
