"""Pins: options written into a configuration file of a host while a project's services
run two releases (``[upgrade_levels] compute = auto``), and removed after.

The file is edited on its host by a short Python program given on the command line, run
with the host's ``python3`` (through the project's ``via`` prefix, e.g. ``ssh {host}``):
the file, the section and each ``option=value`` are its arguments, never shell words.
Only the lines of the pinned options change; every other line, comment and order stays,
and the file is replaced atomically with its mode kept. Each pinned option follows a
comment line that marks it as the upgrade's; an operator's own line of that option is
set aside as a comment while pinned. Removing a pin removes the marked options, puts
back what was set aside, and removes the section when nothing else is left in it. Both
are idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ephyra.strategies.base import Output, Target, on_host, render, stream
from ephyra.upgrade.spec import Pin

SET, UNSET = "set", "unset"
PYTHON = "python3"

#: The program run on the host: ``python3 -c PROGRAM FILE SECTION set|unset OPTION=VALUE...``.
PROGRAM = r"""
import os, sys, tempfile
MARK = "# pinned during an upgrade, removed after it:"
WAS = "#set aside during an upgrade: "
path, section, mode = sys.argv[1:4]
pairs = [arg.split("=", 1) for arg in sys.argv[4:]]
keys = {key for key, _ in pairs}
try:
    with open(path) as f:
        lines = f.read().splitlines()
    st_mode = os.stat(path).st_mode & 0o7777
except FileNotFoundError:
    if mode == "unset":
        print(f"{path}: no such file, nothing pinned")
        sys.exit(0)
    lines, st_mode = [], 0o644

def header(line):
    text = line.strip()
    return text[1:-1].strip() if text.startswith("[") and text.endswith("]") else None

def key_of(line):
    text = line.strip()
    if not text or text[0] in "#;" or "=" not in text:
        return None
    return text.split("=", 1)[0].strip()

out, current, placed, ours = [], None, False, False
for line in lines:
    name = header(line)
    mine, ours = ours, False
    if name is not None:
        current = name
        out.append(line)
        if name == section and mode == "set" and not placed:
            for key, value in pairs:
                out += [MARK, f"{key} = {value}"]
            placed = True
        continue
    if line.startswith(MARK):  # a pin of ours: its option is on the next line
        ours = True
        continue
    if mine:
        continue
    if current == section and line.startswith(WAS):  # the operator's, set aside
        if mode == "unset":
            out.append(line[len(WAS):])
        else:
            out.append(line)
        continue
    if current == section and key_of(line) in keys and mode == "set":
        out.append(WAS + line)
        continue
    out.append(line)
if mode == "set" and not placed:
    if out and out[-1].strip():
        out.append("")
    out.append(f"[{section}]")
    for key, value in pairs:
        out += [MARK, f"{key} = {value}"]
if mode == "unset":  # the section goes too when nothing else is left in it
    kept, i = [], 0
    while i < len(out):
        j = i + 1
        while j < len(out) and header(out[j]) is None:
            j += 1
        block = out[i:j]
        if header(block[0]) != section or any(line.strip() for line in block[1:]):
            kept += block
        i = j
    while kept and not kept[-1].strip():
        kept.pop()
    out = kept
fd, scratch = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".pin-")
with os.fdopen(fd, "w") as f:
    f.write("\n".join(out) + "\n")
os.chmod(scratch, st_mode)
os.replace(scratch, path)
done = ", ".join(f"{key} = {value}" for key, value in pairs) if mode == "set" else ", ".join(keys)
print(f"{path}: [{section}] {mode} {done}")
"""


def apply(
    pin: Pin,
    mode: str,
    target: Target,
    output: Output,
    options: Mapping[str, Any],
    timeout: float,
) -> None:
    """Write (``SET``) or remove (``UNSET``) ``pin`` on ``target``'s host."""
    path = render(pin.file, target)
    pairs = [f"{key}={value}" for key, value in pin.options]
    argv = [PYTHON, "-c", PROGRAM, path, pin.section, mode, *pairs]
    what = f"{mode} [{pin.section}] in {path} on {target.host}"
    stream(on_host(argv, options, target), output, what=what, timeout=timeout)
