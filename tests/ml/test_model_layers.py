"""Models own their task: they import neither HTTP nor settings; the registry never asks a model's kind."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ml_service"
# Third-party modules of the HTTP layer and of the settings: a model needs none of them.
HTTP_AND_SETTINGS = ("fastapi", "starlette", "httpx", "uvicorn", "multipart", "pydantic", "pydantic_settings")
MODEL_KINDS = {"OcrModel", "ClipEncoder", "ClipTextualModel", "ClipVisualModel"}


def imports(path: Path) -> list[str]:
    """Every module a file imports, lazy imports inside functions included."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_models_import_only_models_and_libraries() -> None:
    files = sorted((PACKAGE / "models").rglob("*.py"))
    assert len(files) > 20
    for path in files:
        for name in imports(path):
            where = f"{path.relative_to(PACKAGE.parent)} imports {name}"
            assert name.split(".")[0] not in HTTP_AND_SETTINGS, where
            # of the service itself, only other models: not its settings (config), errors with HTTP
            # statuses, app, protocol, registry or anything else above the models
            assert not name.startswith("ml_service") or name.startswith("ml_service.models"), where


def test_registry_never_asks_a_models_kind() -> None:
    tree = ast.parse((PACKAGE / "registry.py").read_text())
    named = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not named & MODEL_KINDS
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance":
            # the one check left is generic: `use()` hands its caller the type the caller asked for
            assert isinstance(node.args[1], ast.Name) and node.args[1].id == "kind", ast.unparse(node)
    # of the models it knows only their common base and the errors they raise: no kind, no kind's names
    models = [name for name in imports(PACKAGE / "registry.py") if name.startswith("ml_service.models")]
    assert set(models) <= {"ml_service.models.base", "ml_service.models.errors"}, models
    source = (PACKAGE / "registry.py").read_text()
    for kind_word in ("clip", "ocr", "OCR_TASK", "CLIP_TASKS", "CLIP_MODELS"):
        assert kind_word not in source, kind_word
