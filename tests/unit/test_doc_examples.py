"""The reader of the docs' examples (tests/doc_examples.py): what it takes from a page, and
that a page that drifts from the code fails. The docs' own pages are checked here too,
for what needs no service: every block says what it is, every example file loads, every
syntax-only command parses (tests/functional/test_doc_examples.py runs the others)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ephyra.cli.main import build_parser
from tests.doc_examples import (
    Block,
    DocError,
    blocks,
    check_syntax,
    commands,
    expand,
    load_file,
    page,
    pages,
)

PAGES = pages()
IDS = [str(p.relative_to(p.parents[1] if p.parent.name == "docs" else p.parent)) for p in PAGES]


def _page(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "page.md"
    path.write_text(text)
    return path


# -- the docs themselves ---------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_every_block_of_the_docs_says_what_it_is_and_its_files_load(
    path: Path, tmp_path: Path
) -> None:
    found = page(path)
    for block in found.files:
        load_file(block, tmp_path)


@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_the_syntax_only_commands_of_the_docs_parse(path: Path) -> None:
    for block in page(path).syntax:
        check_syntax(build_parser, block)


def test_the_docs_have_commands_to_run_and_to_parse() -> None:
    found = [page(p) for p in PAGES]
    ran = [c for f in found for b in f.run for c in commands(b)]
    parsed = [c for f in found for b in f.syntax for c in commands(b)]
    assert len(ran) >= 15 and len(parsed) >= 30, (len(ran), len(parsed))


# -- a page that drifts fails --------------------------------------------------------------

DRIFTED = """\
# A page

<!-- example: syntax-only -->
```sh
ephyra forklift plan --from cp1 --to cp2 --credentials file:bmc.yaml
ephyra forklift start --from cp1 --to cp2 --parallel 8     # no such option
```
"""


def test_an_option_that_does_not_exist_fails_with_its_page_and_line(tmp_path: Path) -> None:
    (block,) = page(_page(tmp_path, DRIFTED)).syntax
    with pytest.raises(DocError) as caught:
        check_syntax(build_parser, block)
    message = str(caught.value)
    assert message.count("\n") == 0  # the first command parses
    assert "page.md:4: ephyra forklift start --from cp1 --to cp2 --parallel 8" in message
    assert "unrecognized arguments: --parallel 8" in message


def test_a_verb_that_does_not_exist_fails_in_a_synopsis(tmp_path: Path) -> None:
    text = "<!-- example: syntax-only -->\n```sh\nephyra host status | pause | halt [RUN]\n```\n"
    (block,) = page(_page(tmp_path, text)).syntax
    with pytest.raises(DocError) as caught:
        check_syntax(build_parser, block)
    assert "ephyra host halt RUN" in str(caught.value)
    assert "ephyra host pause RUN" not in str(caught.value)


def test_a_command_block_without_a_language_is_refused(tmp_path: Path) -> None:
    text = "Run:\n\n```\nephyra forklift plan --from cp1 --to cp2\n```\n"
    with pytest.raises(DocError, match=r"page.md:3: ephyra commands in a block without"):
        page(_page(tmp_path, text))


def test_an_unknown_marker_is_refused(tmp_path: Path) -> None:
    text = "<!-- example: skip -->\n```sh\nephyra run list\n```\n"
    with pytest.raises(DocError, match=r"page.md:2: unknown example marker 'skip'"):
        page(_page(tmp_path, text))


def test_a_file_example_names_its_loader(tmp_path: Path) -> None:
    text = "```yaml\nrelease: '2026.2'\n```\n"
    (block,) = page(_page(tmp_path, text)).files
    with pytest.raises(DocError, match=r"page.md:1: a yaml example names its loader"):
        load_file(block, tmp_path)


def test_a_file_its_loader_refuses_fails_with_the_loaders_word(tmp_path: Path) -> None:
    text = (
        "<!-- example: spec upgrade.yaml -->\n```yaml\nrelease: '2026.2'\n"
        "strategies: {pkg: {type: package, packages: [nova-common]}}\nstrategy: pkg\n"
        "rolez: {}\n```\n"
    )
    (block,) = page(_page(tmp_path, text)).files
    with pytest.raises(DocError, match=r"page.md:2: the spec loader refuses it: .*rolez"):
        load_file(block, tmp_path)
    assert (tmp_path / "upgrade.yaml").read_text().startswith("release: '2026.2'")


def test_an_environment_with_an_elided_mapping_is_refused(tmp_path: Path) -> None:
    """``addresses: {...}`` is an ellipsis for the reader, not data: the loader refuses it."""
    text = (
        "<!-- example: environment -->\n```yaml\nid: 1\nname: env1\nrelease_id: 1\n"
        "networks: [{name: management, bridge: br-mgmt, cidr: 192.168.0.0/24, "
        "interface: eth1}]\n"
        "nodes: [{id: 1, name: ctl-1, roles: [controller], release_id: 1, addresses: {...}}]\n"
        "```\n"
    )
    (block,) = page(_page(tmp_path, text)).files
    with pytest.raises(DocError, match=r"the environment loader refuses it: .*addresses"):
        load_file(block, tmp_path)


# -- what is read from a block ---------------------------------------------------------------


def test_commands_joined_split_and_redirected() -> None:
    block = Block(
        Path("p.md"),
        1,
        "sh",
        "export X=1\n"
        "ephyra --store etcd3+http://10.0.0.5:2379 version trigger 2026.2 \\\n"
        "    --max-at-once compute=10   # one of them\n"
        "ephyra env import env.yaml && ephyra env show env1\n"
        "ephyra --format yaml inventory show --source openstack > inv.yaml\n"
        "EPHYRA_X=1 .venv/bin/ephyra run list · ephyra run show RUN\n"
        "python -m testbed up /tmp/tb\n",
    )
    found = [(c.argv, c.stdout) for c in commands(block)]
    assert found == [
        (
            (
                "--store",
                "etcd3+http://10.0.0.5:2379",
                "version",
                "trigger",
                "2026.2",
                "--max-at-once",
                "compute=10",
            ),
            None,
        ),
        (("env", "import", "env.yaml"), None),
        (("env", "show", "env1"), None),
        (("--format", "yaml", "inventory", "show", "--source", "openstack"), "inv.yaml"),
        (("run", "list"), None),
        (("run", "show", "RUN"), None),
    ]


def test_a_synopsis_expands_to_every_alternative_with_and_without_its_options() -> None:
    assert expand(("host", "maintenance", "on|off", "HOST", "[--yes]")) == [
        ("host", "maintenance", "off", "HOST"),
        ("host", "maintenance", "off", "HOST", "--yes"),
        ("host", "maintenance", "on", "HOST"),
        ("host", "maintenance", "on", "HOST", "--yes"),
    ]
    assert expand(("upgrade", "status", "|", "pause", "[RUN]")) == [
        ("upgrade", "pause"),
        ("upgrade", "pause", "RUN"),
        ("upgrade", "status"),
        ("upgrade", "status", "RUN"),
    ]
    shown = ("inventory", "show", "--source", "KIND[:ARG]", "[--source", "KIND[:ARG]", "...]")
    assert expand(shown) == [
        ("inventory", "show", "--source", "KIND[:ARG]"),
        ("inventory", "show", "--source", "KIND[:ARG]", "--source", "KIND[:ARG]"),
    ]


def test_blocks_keep_their_marker_line_and_indentation(tmp_path: Path) -> None:
    text = (
        "- a list item:\n\n  <!-- example: credentials bmc.yaml -->\n  ```yaml\n"
        "  nodes:\n    n1: {ipmi_password: x}\n  ```\n\nprose\n\n```text\nephyra: error: x\n```\n"
    )
    first, second = blocks(_page(tmp_path, text))
    assert (first.line, first.lang, first.marker) == (4, "yaml", ("credentials", "bmc.yaml"))
    assert first.text == "nodes:\n  n1: {ipmi_password: x}\n"
    assert (second.line, second.lang, second.marker) == (11, "text", ())
