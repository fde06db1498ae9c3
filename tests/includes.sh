#!/bin/sh
# Modules reach each other through public headers only (docs/ARCHITECTURE.md, "Public and
# internal headers"). The include paths enforce it for a plain name ("nn.h" is not found from
# cli/); this rejects the ways around them: a quoted include naming a directory ("../model/nn.h",
# "model/nn.h") anywhere in the modules' sources. The tests may use internal headers.
cd "${VT_SOURCE_ROOT:?}" || exit 1
bad=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*/' --include='*.c' \
    --include='*.h' proto model train codec stream cli daemon bench)
[ -z "$bad" ] && exit 0
echo "quoted includes with a directory (use the module's meson dependency instead):"
echo "$bad"
exit 1
