"""Every deliberate twin (models/twins.py) names files that exist and an equivalence test that exists."""
import ast
from pathlib import Path

import pytest

from models.twins import TWINS

ROOT = Path(__file__).resolve().parent.parent


def defined_tests(path: Path) -> set[str]:
    return {node.name for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


@pytest.mark.parametrize("twin", TWINS, ids=lambda t: f"{t['twin']}~{t['reference']}")
def test_every_twin_has_its_files_and_its_equivalence_test(twin):
    assert (ROOT / twin["twin"]).is_file(), twin["twin"]
    reference = twin["reference"]
    assert (ROOT / reference).is_file() if reference.endswith(".py") else reference.startswith("torch.")
    file, _, name = twin["test"].partition("::")
    assert name in defined_tests(ROOT / file), twin["test"]
    assert twin["why"]


def test_the_registry_lists_every_twin_module():
    """A module that says it mirrors or streamlines another must be registered here."""
    listed = {t["twin"] for t in TWINS}
    assert {"models/lean_layers.py", "export/graph.py", "web/src/landmarks.js"} <= listed
