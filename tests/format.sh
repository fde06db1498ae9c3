#!/bin/sh
# The C sources follow .clang-format (./dev format fixes them). Skips without clang-format.
cd "${VT_SOURCE_ROOT:?}" || exit 1
command -v clang-format >/dev/null || { echo "SKIP: clang-format is not installed"; exit 77; }
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
# shellcheck disable=SC2086
clang-format --dry-run -Werror $files
