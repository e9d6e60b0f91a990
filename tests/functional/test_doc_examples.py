"""Every example of the docs holds as written (tests/doc_examples.py reads them).

Each page of ``docs/*.md`` and ``README.md`` (its files loaded and its ``syntax-only``
commands parsed in tests/unit/test_doc_examples.py): its other commands are run,
in-process and in order, against the testbed: one
``clouds.yaml`` whose clouds have the docs' names (``cp1`` and ``cp2``: two real Ironic
control planes; ``prod``: a real Nova), the docs' etcd address pointing at a real etcd,
and the pages' files (``upgrade.yaml``, ``hosts.yaml``, ``env.yaml``...) in the directory
the commands run in. A command must end with the exit code its block states (0).
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from ephyra.cli.main import main
from testbed.etcd import Etcd
from testbed.ironic import Testbed
from testbed.nova import NovaTestbed
from testbed.seed import clear, seed_nodes, write_credentials
from tests.doc_examples import Block, Command, DocError, commands, load_file, page
from tests.doc_examples import pages as doc_pages

PAGES = doc_pages()
IDS = [f"docs/{p.name}" if p.parent.name == "docs" else p.name for p in PAGES]
#: The docs' addresses of services, and the testbed fixture that stands for each.
ETCD_IN_DOCS = "etcd3+http://10.0.0.5:2379"
NODES = 2  # deployed nodes in cp1 before a page's forklift
#: Variables of the machine that would change what a documented command does.
CLEARED = ("OS_CLOUD", "EPHYRA_URL", "EPHYRA_STORE", "EPHYRA_JOURNAL", "EPHYRA_LOCKS")


@dataclass
class World:
    """The directory the docs' commands run in, and the services they reach."""

    root: Path
    request: pytest.FixtureRequest
    clouds: dict[str, dict[str, object]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def clouds_yaml(self) -> Path:
        return self.root / "clouds.yaml"

    def _add_clouds(self, clouds_yaml: Path, names: dict[str, str]) -> None:
        known = yaml.safe_load(clouds_yaml.read_text())["clouds"]
        for doc_name, real in names.items():
            self.clouds[doc_name] = known[real]
        self.clouds_yaml.write_text(yaml.safe_dump({"clouds": self.clouds}))

    def start(self, blocks: list[Block]) -> None:
        """Start (once per session) the services ``blocks`` reach: before this test sets
        its environment, which a session fixture's own would otherwise replace."""
        text = "".join(block.text for block in blocks)
        if "forklift" in text:
            self.request.getfixturevalue("testbed")
        if "--os-cloud prod" in text:
            self.request.getfixturevalue("nova")
        if ETCD_IN_DOCS in text:
            etcd: Etcd = self.request.getfixturevalue("etcd")
            self.env[ETCD_IN_DOCS] = etcd.url

    def prepare(self, block: Block) -> None:
        """Set the world as ``block``'s commands expect it."""
        text = block.text
        if "forklift" in text:
            testbed: Testbed = self.request.getfixturevalue("testbed")
            self._add_clouds(testbed.clouds_yaml, {"cp1": "cp1", "cp2": "cp2"})
            if "forklift start" in text:  # a fresh cp1 with deployed nodes, cp2 empty
                for name in testbed.names:
                    clear(testbed.connect(name))
                specs = seed_nodes(testbed.connect("cp1"), NODES)
                write_credentials(self.root / "bmc.yaml", specs)
        if "--os-cloud prod" in text:
            nova: NovaTestbed = self.request.getfixturevalue("nova")
            nova.clean()
            self._add_clouds(nova.clouds_yaml, {"prod": nova.cloud})

    def enter(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Run in the examples' directory, with the docs' clouds and a journal of its own."""
        monkeypatch.chdir(self.root)
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(self.clouds_yaml))
        monkeypatch.setenv("XDG_STATE_HOME", str(self.root / "state"))
        for name in CLEARED:
            monkeypatch.delenv(name, raising=False)

    def real(self, word: str) -> str:
        """``word`` with the docs' service addresses replaced by the testbed's."""
        for doc_value, real in self.env.items():
            word = word.replace(doc_value, real)
        return word


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every page's example files, written (and loaded) where the commands run."""
    root = tmp_path_factory.mktemp("doc-examples")
    for path in PAGES:
        for block in page(path).files:
            load_file(block, root)
    return root


@pytest.fixture
def world(files: Path, request: pytest.FixtureRequest) -> World:
    return World(files, request)


def exports(block: Block) -> list[tuple[str, str]]:
    """The ``export NAME=VALUE`` lines of a run block, in order."""
    found: list[tuple[str, str]] = []
    for line in block.text.splitlines():
        words = line.split("#", 1)[0].split()
        for word in words[1:] if words[:1] == ["export"] else []:
            name, equal, value = word.partition("=")
            if equal:
                found.append((name, value))
    return found


def run(world: World, command: Command) -> tuple[int, str]:
    """Run ``command`` in-process as ``ephyra`` would; its exit code and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    argv = [world.real(word) for word in command.argv]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse refused it
            code = exc.code if isinstance(exc.code, int) else 1
    if command.stdout is not None:
        Path(command.stdout).write_text(out.getvalue())
    return code, f"{out.getvalue()[-2000:]}{err.getvalue()[-2000:]}"


@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_the_commands_run_against_the_testbed(
    path: Path, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = []
    blocks = page(path).run
    world.start(blocks)
    world.enter(monkeypatch)
    for block in blocks:
        world.prepare(block)
        for name, value in exports(block):
            monkeypatch.setenv(name, world.real(value))
        for command in commands(block):
            code, said = run(world, command)
            if code != block.expected_exit:
                failures.append(f"{command}: exit {code}, not {block.expected_exit}\n{said}")
    if failures:
        raise DocError("\n".join(failures))
    assert os.getcwd() == str(world.root)
