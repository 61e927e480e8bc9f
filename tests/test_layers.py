"""The packages depend on each other in one direction only, and lazy imports say why they are lazy."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = (
    "immich_aio",
    "patcher",
    "ml_service",
    "db_extension",
    "gateway",
    "e2e",
    "deploy",
    "testsupport",
    "bench",
)
# What each package may import from the others. db_extension only reads ml_service's model names (a
# module without dependencies), to ask the ML service for the right text embedding.
ALLOWED: dict[str, set[str]] = {
    "immich_aio": {"patcher", "ml_service", "db_extension", "gateway", "e2e", "deploy"},
    # the gateway reads the search SQL's Python side (query parsing, partners, the installer) and, for its
    # web add-on, where ui_snippets' strings are (patcher.manifest.repository_root), and the one home of
    # the Traditional -> Simplified reading of CLIP queries
    "gateway": {
        "db_extension",
        "patcher.manifest",
        "ml_service.models.clip.script",
        "ml_service.models.clip.names",
    },
    "deploy": {"patcher", "ml_service.models.clip.names", "gateway.releases"},
    "e2e": {"patcher", "ml_service", "db_extension", "gateway"},
    "db_extension": {"ml_service.models.clip.names"},
    "patcher": set(),
    "ml_service": set(),
    "testsupport": {"patcher", "ml_service", "db_extension", "gateway", "e2e"},
    "bench": {"patcher", "ml_service", "db_extension", "gateway", "e2e", "testsupport"},
}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_names(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def allowed(package: str, name: str) -> bool:
    top = name.split(".", 1)[0]
    if top not in FIRST_PARTY or top == package:
        return True
    return any(name == rule or name.startswith(rule + ".") for rule in ALLOWED[package])


@pytest.mark.parametrize("package", ALLOWED)
def test_no_package_imports_one_above_or_beside_it(package: str) -> None:
    wrong = []
    for path in modules(package):
        for line, name in imported_names(ast.parse(path.read_text(encoding="utf-8"))):
            if not allowed(package, name):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not wrong, "\n".join(wrong)


def function_imports(tree: ast.Module) -> list[ast.stmt]:
    """Import statements inside function bodies (module level and `if TYPE_CHECKING:` excluded)."""
    found: list[ast.stmt] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    found.append(inner)
    return found


@pytest.mark.parametrize("package", [p for p in ALLOWED if p != "bench"])
def test_every_import_inside_a_function_says_why_in_a_comment(package: str) -> None:
    silent = []
    for path in modules(package):
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for statement in function_imports(tree):
            above = statement.lineno - 2
            # consecutive imports share the comment above the first of them
            while above >= 0 and lines[above].strip().startswith(("import ", "from ")):
                above -= 1
            if above < 0 or not lines[above].strip().startswith("#"):
                silent.append(f"{path.relative_to(ROOT)}:{statement.lineno}")
    assert not silent, "imports inside functions without a comment saying why:\n" + "\n".join(silent)
