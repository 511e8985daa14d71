"""The layout of ``transforms/`` shows the data flow: each room imports only rooms before it
(imports for type annotations alone aside), only ``beam/`` knows Beam, and nothing in
``transforms/`` knows the command lines of ``pipeline/``."""
import ast
from pathlib import Path

import transforms

ROOT = Path(transforms.__file__).parent
# In the order of the data flow (transforms/__init__.py); config, what a run computes, is
# made of every room's defaults, and beam/ wires them all.
ORDER = ("io", "model", "vocab", "maps", "quality", "train", "viz", "export", "config", "beam")


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "transforms" and len(parts) > 1 else None


def _imports(path: Path) -> set[str]:
    """Modules ``path`` imports when it runs: not those under ``if TYPE_CHECKING:``."""
    found = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return found


def _modules() -> dict[str, set[str]]:
    return {str(path.relative_to(ROOT.parent)): _imports(path) for path in ROOT.rglob("*.py")}


def test_each_room_imports_only_rooms_before_it():
    wrong = []
    for module, imports in _modules().items():
        room = Path(module).parts[1].removesuffix(".py")
        if room not in ORDER:  # transforms/__init__.py
            continue
        for imported in imports:
            other = _room(imported)
            if other in ORDER and ORDER.index(other) > ORDER.index(room):
                wrong.append(f"{module} imports {imported}")
    assert not wrong, wrong


def test_only_beam_knows_beam_and_nothing_knows_the_command_lines():
    modules = _modules()
    assert any("apache_beam" in name for name in modules["transforms/beam/read.py"])
    wrong = [f"{module} imports {name}" for module, imports in modules.items() for name in imports
             if name.split(".")[0] == "pipeline"
             or (name.split(".")[0] == "apache_beam" and not module.startswith("transforms/beam/"))]
    assert not wrong, wrong
