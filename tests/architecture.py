#!/usr/bin/env python3
"""docs/ARCHITECTURE.md names files and functions: check that each one exists.

Every `backticked` name of the map is checked against the source tree ($VT_SOURCE_ROOT):

- a path (it has a slash or a file extension): the file or folder exists, at that path from
  the top of the tree or, for a bare name such as `format.c`, under some folder of the tree
  (the map names a module's files inside that module's paragraph);
- a C name (letters, digits and underscores with at least one underscore, optionally
  followed by "()"): a function, macro, type, variable or field of that name is defined in a
  C source of the tree (its definition line, not only a mention: `name(` at the start of a
  definition, `#define name`, `} name;`, `struct name`, `enum name`, an enum constant or a
  declaration ending in `name;` / `name[`). Names of other projects' APIs (FFmpeg, libuv)
  are checked as used by the tree instead.

Names that are not ours (another project's layout, placeholders) are listed in NOT_OURS with
the reason. Standard library only; exit status 0 when all names hold, 1 with the list of
those that do not.
"""
import os
import re
import sys

ROOT = os.environ.get("VT_SOURCE_ROOT") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "ARCHITECTURE.md")

# Names the map uses that are not files or symbols of this tree.
NOT_OURS = {
    "src/": "libuv's private folder, the model the map compares include/ with",
    "include/": "each module's public folder, a pattern (base/include/, ...)",
    "build": "the build folder, not tracked",
    "build-fuzz/corpus/": "made by ./dev fuzz, not tracked",
    "convert.py": "named as tools/convert.py's job",
    "../shared/data": "the data folder beside the checkout, not in the tree",
    '"../model/internal/nn.h"': "the include the map forbids",
}
# Prefixes of other projects' APIs: checked as used by the tree, not defined in it.
FOREIGN = ("av_", "avcodec_", "avformat_", "sws_", "uv_", "cJSON_", "cblas_", "pthread_",
           "interrupt_callback")
SKIP_DIRS = {".git", "node_modules", "build", "build-asan", "build-fuzz", "__pycache__"}
EXTS = (".c", ".h", ".md", ".py", ".sh", ".js", ".json", ".build", ".txt", ".svg", ".html",
        ".css", ".service", ".socket", ".options", ".ini")


def tree():
    files, dirs = [], set()
    for d, subdirs, names in os.walk(ROOT):
        subdirs[:] = [s for s in subdirs if s not in SKIP_DIRS and not s.startswith("build")]
        rel = os.path.relpath(d, ROOT)
        if rel != ".":
            dirs.add(rel.replace(os.sep, "/") + "/")
        for n in names:
            files.append(os.path.normpath(os.path.join(rel, n)).replace(os.sep, "/"))
    return files, dirs


def path_ok(tok, files, dirs):
    """`tok` names a file or folder of the tree: from the top, or as a trailing part."""
    tok = tok.lstrip("./") if tok.startswith("./") else tok
    if tok.startswith("/"):
        return True  # an HTTP route or a system path: not the tree's
    if tok.endswith("/") or tok + "/" in dirs:
        tok = tok.rstrip("/") + "/"
        return tok in dirs or any(d.endswith("/" + tok) for d in dirs)
    return tok in files or any(f.endswith("/" + tok) for f in files)


def expand(tok):
    """`adapt.c/.h` -> adapt.c, adapt.h; `vt_x_get_a/b` -> vt_x_get_a, vt_x_get_b; everything
    else as it is."""
    m = re.fullmatch(r"(.+)\.(\w+)/\.(\w+)", tok)
    if m:
        return [m.group(1) + "." + m.group(2), m.group(1) + "." + m.group(3)]
    m = re.fullmatch(r"([a-z]\w*_)(\w+)((?:/\w+)+)", tok)
    if m:
        return [m.group(1) + w for w in [m.group(2)] + m.group(3).split("/")[1:]]
    return [tok]


def defined(name, sources):
    pats = [
        rf"^[A-Za-z_][\w \t\*]*\b{name}\s*\(",  # a function definition or prototype
        rf"^\s*#\s*define\s+{name}\b",
        rf"}}\s*{name}\s*;",  # typedef struct { ... } name;
        rf"\b(struct|enum|union)\s+{name}\b",
        rf"^\s+{name}\s*(=[^=].*)?,\s*(/\*.*)?$",  # an enum constant
        rf"^\s+{name}\s*(=[^=].*)?\s*(/\*.*)?$",  # the last enum constant
        rf"[\w\*]\s+\**{name}\s*(\[[^\]]*\])*\s*(=[^=].*)?;",  # a variable or a field
        rf"[\w\*]\s+\**{name}\s*(\[[^\]]*\])*\s*,",  # one of several fields of a line
        rf"^static\s.*\b{name}\b",  # a static table or variable
    ]
    rx = re.compile("|".join("(?:%s)" % p for p in pats), re.M)
    # only the lines that mention the name: the patterns are slow over whole files
    lines = "\n".join(l for text in sources.values() if name in text
                      for l in text.splitlines() if name in l)
    return bool(rx.search(lines))


def used(name, sources):
    rx = re.compile(rf"\b{re.escape(name)}\b")
    return any(rx.search(text) for text in sources.values())


def main():
    files, dirs = tree()
    c_sources = {}
    all_sources = {}
    for f in files:
        if f.endswith((".c", ".h")):
            with open(os.path.join(ROOT, f), encoding="utf-8", errors="replace") as fh:
                c_sources[f] = fh.read()
        if f.endswith((".c", ".h", ".py", ".sh", ".js", ".build", ".options")) or f in ("dev",):
            with open(os.path.join(ROOT, f), encoding="utf-8", errors="replace") as fh:
                all_sources[f] = fh.read()
    meson_files = [t for f, t in all_sources.items() if f.endswith("meson.build")]
    with open(DOC, encoding="utf-8") as fh:
        doc = fh.read()
    # Fenced blocks hold drawings and commands, not names to check.
    text = re.sub(r"```.*?```", "", doc, flags=re.S)
    bad, checked = [], 0
    for tok in sorted(set(re.findall(r"`([^`\n]+)`", text))):
        tok = tok.strip()
        if tok in NOT_OURS:
            continue
        for t in expand(tok):
            if re.search(r"[<>*|{}\s,=$]|NAME|\.\.\.", t):
                continue  # a pattern, a placeholder, a command or an expression
            if "/" in t or t.endswith(EXTS):
                checked += 1
                if not path_ok(t, files, dirs):
                    bad.append("%s: no such file or folder" % t)
                continue
            m = re.fullmatch(r"([A-Za-z_]\w*_\w*)(\(\))?", t)
            if not m or m.group(1).endswith("_") or m.group(1).startswith("_"):
                continue  # a word, a prefix (vtm_, av_) or a keyword (_Atomic)
            name = m.group(1)
            checked += 1
            if name.startswith(FOREIGN):
                if not used(name, all_sources):
                    bad.append("%s: not used anywhere in the tree" % name)
            elif name.isupper() and not name.startswith(("VT_", "VTD_", "VTM_", "VTC_", "VTP_")):
                if not used(name, all_sources):  # a signal or errno name
                    bad.append("%s: not used anywhere in the tree" % name)
            elif name.isupper() and not defined(name, c_sources):
                # environment variables are read, not defined
                if not used(name, all_sources):
                    bad.append("%s: not defined in any C source" % name)
            elif name.endswith("_dep"):  # a meson dependency object
                if not re.search(rf"^\s*{name}\s*=", "\n".join(meson_files), re.M):
                    bad.append("%s: no meson.build declares it" % name)
            elif not name.isupper() and not defined(name, c_sources):
                bad.append("%s: not defined in any C source" % name)
    if bad:
        print("docs/ARCHITECTURE.md names what the tree does not have:")
        for b in bad:
            print("  " + b)
        return 1
    print("docs/ARCHITECTURE.md: %d names checked, all found" % checked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
