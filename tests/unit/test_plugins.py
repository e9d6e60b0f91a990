"""Plugins are loaded by entry point and checked at load against the interface they must
satisfy: a plugin that lacks something is refused, naming what it lacks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from ephyra import plugins
from ephyra.errors import PluginError
from ephyra.strategies.base import Change, Output, Strategy, Target
from ephyra.workloads import WorkloadPlugin
from ephyra.workloads.base import NodeRef

NS = "ephyra.tests"


class GoodStrategy(Strategy):
    name = "good"

    def version(self, target: Target) -> str:
        return "1"

    def upgrade(self, target: Target, output: Output) -> Change:
        return Change("1", "2")


class NamelessStrategy(Strategy):
    pass


class NotAStrategy:
    name = "stranger"


class HalfWorkload:
    """Tells the application nothing of health."""

    name = "half"

    def __init__(self, options: dict[str, str]) -> None:
        self.options = options

    def prepare(self, node: NodeRef) -> None:
        pass

    def return_node(self, node: NodeRef) -> None:
        pass


class Backend(ABC):
    kind: ClassVar[str] = "backend"

    @abstractmethod
    def get(self, key: str) -> str: ...


class HalfBackend(Backend):
    pass


def not_a_class() -> None:
    pass


@pytest.fixture
def entry_points() -> Iterator[None]:
    here = __name__
    plugins._found[NS] = [
        plugins.EntryPoint(name, f"{here}:{attribute}", NS)
        for name, attribute in (
            ("good", "GoodStrategy"),
            ("nameless", "NamelessStrategy"),
            ("stranger", "NotAStrategy"),
            ("half", "HalfWorkload"),
            ("backend", "HalfBackend"),
            ("function", "not_a_class"),
        )
    ] + [plugins.EntryPoint("broken", "ephyra_no_such_module:Thing", NS)]
    yield
    del plugins._found[NS]


def test_a_plugin_that_satisfies_its_interface_is_its_class(entry_points: None) -> None:
    cls = plugins.load(NS, "good", Strategy)
    assert cls is GoodStrategy
    assert cls({}).upgrade(Target("h", "2"), print) == Change("1", "2")


def test_a_class_that_is_not_a_subclass_of_its_base_is_refused(entry_points: None) -> None:
    with pytest.raises(PluginError, match=r"plugin 'stranger' .* is not a subclass of Strategy"):
        plugins.load(NS, "stranger", Strategy)


def test_a_missing_class_variable_is_named(entry_points: None) -> None:
    with pytest.raises(PluginError, match=r"'nameless' .*does not implement Strategy: no name$"):
        plugins.load(NS, "nameless", Strategy)


def test_a_protocol_s_missing_methods_are_named(entry_points: None) -> None:
    with pytest.raises(
        PluginError,
        match=r"'half' .*does not implement WorkloadPlugin: no app_health, node_health$",
    ):
        plugins.load(NS, "half", WorkloadPlugin)


def test_an_abstract_method_left_abstract_is_named(entry_points: None) -> None:
    with pytest.raises(PluginError, match=r"does not implement Backend: no get$"):
        plugins.load(NS, "backend", Backend)


def test_what_is_not_a_class_is_refused(entry_points: None) -> None:
    with pytest.raises(PluginError, match=r"'function' .* is not a class implementing Strategy"):
        plugins.load(NS, "function", Strategy)


def test_unknown_and_unloadable_plugins(entry_points: None) -> None:
    with pytest.raises(PluginError, match=r"no ephyra.tests plugin named 'gone' \(known: .*good"):
        plugins.load(NS, "gone", Strategy)
    with pytest.raises(PluginError, match=r"plugin 'broken' failed to load: No module"):
        plugins.load(NS, "broken", Strategy)


def test_members_are_methods_and_class_variables_of_every_base() -> None:
    assert plugins.members(Strategy) == {"name", "version", "upgrade", "can_downgrade", "downgrade"}
    # name is an instance attribute of the Workload protocol: not asked of the class
    assert plugins.members(WorkloadPlugin) == {
        "prepare",
        "return_node",
        "node_health",
        "app_health",
    }


@pytest.mark.parametrize(
    ("namespace", "interface"),
    [
        ("ephyra.strategies", Strategy),
        ("ephyra.workloads", WorkloadPlugin),
    ],
)
def test_every_installed_plugin_satisfies_its_interface(namespace: str, interface: Any) -> None:
    found = plugins.names(namespace)
    assert found
    for name in found:
        assert isinstance(plugins.load(namespace, name, interface), type)
