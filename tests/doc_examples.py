"""The examples of the docs, as the tests read them: command blocks and example files.

Every fenced block of ``docs/*.md`` and ``README.md`` is read with the marker that comes
before it, an HTML comment on the last non-blank line above the fence::

    <!-- example: syntax-only -->        a command block checked against the parser only
    <!-- example: spec upgrade.yaml -->  an example file: its loader, and the name the
                                         commands of the same page find it under

A ``sh`` or ``console`` block without a marker is run (``run``): its ``ephyra`` commands are
executed against the testbed, in order, in one directory per page, and each must exit 0
(``<!-- example: run exit=N -->``: N). A ``syntax-only`` block is for a cloud the testbed
cannot give (a production etcd, a server of its own, a host's network); its commands are
parsed by ``ephyra``'s own argument parser, with the synopsis notation expanded
(``on|off`` and ``status | pause`` are alternatives, ``[OPTION]`` is optional). A ``yaml``
or ``json`` block must name its loader (:data:`LOADERS`) and is loaded by the code that
reads such files. A block without a language that holds an ``ephyra`` command is refused:
it must say what it is. See docs/testbed.md, "The examples of the docs".
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMMAND_LANGS = ("sh", "console")
FILE_LANGS = ("yaml", "json")
MARKER = re.compile(r"^<!--\s*example:\s*(?P<body>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")  # also in a list item
EPHYRA = re.compile(r"^(?:\S*/)?ephyra$")  # ephyra, .venv/bin/ephyra, /opt/ephyra/bin/ephyra
#: Words between commands on one line: the shell's, and the synopsis' ``·``.
SEPARATORS = {"&&", "||", ";", "·"}


class DocError(AssertionError):
    """An example that does not hold: the page and line, and why."""


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    marker: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        try:
            shown = self.path.relative_to(ROOT)
        except ValueError:
            shown = self.path
        return f"{shown}:{self.line}"

    @property
    def mode(self) -> str:
        return self.marker[0] if self.marker else ("run" if self.is_commands else "")

    @property
    def options(self) -> dict[str, str]:
        return dict(w.split("=", 1) for w in self.marker[1:] if "=" in w)

    @property
    def is_commands(self) -> bool:
        return self.lang in COMMAND_LANGS

    @property
    def expected_exit(self) -> int:
        return int(self.options.get("exit", "0"))


@dataclass(frozen=True)
class Command:
    block: Block
    argv: tuple[str, ...]  # without the leading ``ephyra``
    stdout: str | None = None  # the file of ``> FILE``

    def __str__(self) -> str:
        return f"{self.block.where}: ephyra {shlex.join(self.argv)}"


def pages(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def blocks(path: Path, text: str | None = None) -> list[Block]:
    """The fenced blocks of the markdown file ``path``, each with its marker."""
    lines = (path.read_text() if text is None else text).splitlines()
    found: list[Block] = []
    opened: tuple[int, str, tuple[str, ...], int] | None = None
    body: list[str] = []
    last = ""  # the last non-blank line outside a block
    for number, line in enumerate(lines, 1):
        fence = FENCE.match(line)
        if opened is None:
            if fence:
                marked = MARKER.match(last.strip())
                marker = tuple(marked["body"].split()) if marked else ()
                opened, body = (number, fence["lang"], marker, len(fence["indent"])), []
            elif line.strip():
                last = line
        elif line.strip().startswith("```"):
            start, lang, marker, indent = opened
            text = "\n".join(b[indent:] if not b[:indent].strip() else b for b in body)
            found.append(Block(path, start, lang, text + "\n", marker))
            opened, last = None, ""
        else:
            body.append(line)
    if opened is not None:
        raise DocError(f"{path}:{opened[0]}: a block is opened and never closed")
    return found


def _lines(text: str) -> Iterator[str]:
    """The logical lines of a shell block: continuations joined."""
    pending = ""
    for raw in text.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        yield pending + raw
        pending = ""
    if pending:
        yield pending


def _words(line: str, where: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars="&;")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError as exc:
        raise DocError(f"{where}: {line!r}: {exc}") from exc


def _commands_of(words: list[str]) -> Iterator[list[str]]:
    current: list[str] = []
    for word in words:
        if word in SEPARATORS:
            if current:
                yield current
            current = []
        else:
            current.append(word)
    if current:
        yield current


def _unprefixed(words: list[str]) -> list[str]:
    """``words`` without leading ``NAME=value`` assignments (``VAR=x ephyra ...``)."""
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words = words[1:]
    return words


def commands(block: Block) -> list[Command]:
    """The ``ephyra`` commands of a command block (other programs are left out)."""
    found: list[Command] = []
    for line in _lines(block.text):
        for words in _commands_of(_words(line, block.where)):
            words, stdout = _redirected(_unprefixed(words), block.where)
            if words and EPHYRA.match(words[0]):
                found.append(Command(block, tuple(words[1:]), stdout))
    return found


def _redirected(words: list[str], where: str) -> tuple[list[str], str | None]:
    """``words`` without a last ``> FILE``, and FILE."""
    if ">" not in words:
        return words, None
    at = words.index(">")
    if at != len(words) - 2:
        raise DocError(f"{where}: only a last '> FILE' is understood: {shlex.join(words)}")
    return words[:at], words[at + 1]


def expand(argv: tuple[str, ...]) -> list[tuple[str, ...]]:
    """A synopsis' concrete command lines: every alternative (``a|b``, ``a | b``), with
    every ``[optional]`` part and without."""
    slots: list[list[str]] = []
    optional: list[bool] = []
    joining = False
    depth = 0
    for word in argv:
        if word == "|" and depth == 0:
            joining = True
            continue
        bare = word
        if bare.startswith("["):
            bare, depth = bare[1:], depth + 1
        inside = depth > 0
        if bare.endswith("]") and bare.count("]") > bare.count("["):  # not KIND[:ARG]
            bare, depth = bare[:-1], depth - 1
        alternatives = [a for a in bare.split("|") if a]
        if bare == "...":  # more of the same
            alternatives = []
        if joining and slots:
            slots[-1] += alternatives
        elif alternatives:
            slots.append(alternatives)
            optional.append(inside)
        joining = False
    variants: set[tuple[str, ...]] = set()
    for keep in (True, False):
        kept = [s for s, o in zip(slots, optional, strict=True) if keep or not o]
        variants.update(itertools.product(*kept))
    return sorted(variants)


def parse(parser: argparse.ArgumentParser, argv: tuple[str, ...]) -> str | None:
    """``None`` if ``ephyra``'s parser takes ``argv``, else what it said."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(list(argv))
    except SystemExit as exc:
        if exc.code not in (0, None):
            return err.getvalue().strip().splitlines()[-1] if err.getvalue() else str(exc)
    return None


def check_syntax(parser_of: Callable[[], argparse.ArgumentParser], block: Block) -> None:
    """Every command of ``block``, every variant of its synopsis, parses."""
    problems = []
    for command in commands(block):
        for argv in expand(command.argv):
            said = parse(parser_of(), argv)
            if said is not None:
                problems.append(f"{block.where}: ephyra {shlex.join(argv)}: {said}")
    if problems:
        raise DocError("\n".join(problems))


# -- example files --------------------------------------------------------------------


def _document(block: Block) -> Any:
    try:
        return json.loads(block.text) if block.lang == "json" else yaml.safe_load(block.text)
    except (ValueError, yaml.YAMLError) as exc:
        raise DocError(f"{block.where}: not {block.lang}: {exc}") from exc


def _spec(data: Any, path: Path) -> None:
    from ephyra.upgrade import spec

    spec.parse(data, str(path))


def _inventory(data: Any, path: Path) -> None:
    from ephyra.inventory import static

    static.parse(data, str(path), f"static:{path}")


def _environment(data: Any, path: Path) -> None:
    from ephyra.netscheme.model import Environment

    Environment.parse(data)


def _strategies(data: Any, path: Path) -> None:
    from ephyra.strategies.base import build

    if isinstance(data, dict) and isinstance(data.get("strategies"), dict):
        data = data["strategies"]  # a specification's part
    if not isinstance(data, dict):
        raise DocError(f"{path}: a mapping of name -> strategy options")
    for options in data.values():
        build(options)


def _credentials(data: Any, path: Path) -> None:
    from ephyra.forklift.secrets import FileCredentials

    FileCredentials(str(path))


def _serve_config(data: Any, path: Path) -> None:
    from ephyra.api.config import ServeConfig

    ServeConfig.load(path)


def _notifiers(data: Any, path: Path) -> None:
    """The notifier configuration (owner-only, as it must be), each notifier made."""
    from ephyra.notifiers.config import load

    path.chmod(0o600)
    config = load(path)
    for name in config.specs():
        config.build(name).close()


def _role_map(data: Any, path: Path) -> None:
    from ephyra.inventory.rolemap import RoleMap

    RoleMap.load(str(path))


def _tokens(data: Any, path: Path) -> None:
    from ephyra.api.auth import StaticTokens

    StaticTokens(path)


def _policy(data: Any, path: Path) -> None:
    from ephyra.api.policy import Policy

    Policy(str(path))


def _clouds(data: Any, path: Path) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("clouds"), dict):
        raise DocError(f"{path}: clouds.yaml is a mapping with clouds: NAME -> cloud")


def _plain(data: Any, path: Path) -> None:
    """An output or a document of another program: it parses, nothing more."""


#: The loaders a file example may name: the code that reads such a file.
def _handovers(data: Any, path: Path) -> None:
    """The hand-over configuration (owner-only, as it must be), each hand-over built."""
    from ephyra.strategies.handover import load

    path.chmod(0o600)
    config = load(path)
    for name in config.handovers:
        config.build(name)


LOADERS: dict[str, Callable[[Any, Path], None]] = {
    "spec": _spec,
    "inventory": _inventory,
    "environment": _environment,
    "strategies": _strategies,
    "credentials": _credentials,
    "serve-config": _serve_config,
    "notifiers": _notifiers,
    "handovers": _handovers,
    "role-map": _role_map,
    "clouds": _clouds,
    "tokens": _tokens,
    "policy": _policy,
    "output": _plain,
}


def load_file(block: Block, directory: Path) -> Path:
    """Write the example file of ``block`` into ``directory`` (under its name, if it has
    one) and load it with its loader; a refusal is a DocError naming the block."""
    from ephyra.errors import EphyraError

    if not block.marker or block.marker[0] not in LOADERS:
        raise DocError(
            f"{block.where}: a {block.lang} example names its loader, one of "
            f"{', '.join(sorted(LOADERS))}: <!-- example: LOADER [FILE] -->"
        )
    names = [w for w in block.marker[1:] if "=" not in w]
    path = directory / (names[0] if names else f"example-{block.line}.{block.lang}")
    path.write_text(block.text)
    data = _document(block)
    try:
        LOADERS[block.marker[0]](data, path)
    except (EphyraError, ValueError) as exc:
        raise DocError(f"{block.where}: the {block.marker[0]} loader refuses it: {exc}") from exc
    return path


@dataclass
class Page:
    """A page's examples: its files, and its commands to run or to parse."""

    path: Path
    files: list[Block] = field(default_factory=list)
    run: list[Block] = field(default_factory=list)
    syntax: list[Block] = field(default_factory=list)


def page(path: Path, text: str | None = None) -> Page:
    """The examples of one page; a block that does not say what it is is a DocError."""
    found = Page(path)
    for block in blocks(path, text):
        if block.lang in FILE_LANGS:
            found.files.append(block)
        elif block.is_commands and block.mode == "run":
            found.run.append(block)
        elif block.is_commands and block.mode == "syntax-only":
            found.syntax.append(block)
        elif block.is_commands:
            raise DocError(f"{block.where}: unknown example marker {' '.join(block.marker)!r}")
        elif not block.lang and any(
            EPHYRA.match((line.split() or [""])[0]) for line in block.text.splitlines()
        ):
            raise DocError(
                f"{block.where}: ephyra commands in a block without a language: mark it "
                "```sh (with <!-- example: syntax-only --> if the testbed cannot run it), "
                "or ```text if it is no command"
            )
    return found
