"""Progress shown to an operator: a plan's tree as plain text."""

from rich.tree import Tree

from ephyra.progress import rendered


def test_a_tree_is_rendered_as_plain_text() -> None:
    tree = Tree("forklift cp1 -> cp2")
    tree.add("[bold]batch 1[/bold]: node-0000")
    assert rendered(tree) == "forklift cp1 -> cp2\n└── batch 1: node-0000\n"
