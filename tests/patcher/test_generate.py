"""The generated edits' makers: the model table lands at the end of CLIP_MODEL_INFO, the generator's flags
and pinned version are read from the release's own files, and an unchanged diff keeps the file as it was."""

from pathlib import Path

import pytest

from patcher import generate, manifest
from patcher.errors import PatcherError

CONSTANTS = """export const CLIP_MODEL_INFO: Record<string, ModelInfo> = {
  'ViT-B-32__openai': { dimSize: 512 },
};

type Other = {
  x: 1,
};
"""


def test_the_models_are_added_at_the_end_of_the_clip_table() -> None:
    text = generate.clip_table(CONSTANTS, {"RN50__cn-clip": 1024, "ViT-B-16__cn-clip": 512})
    table = text.split("};", 1)[0]
    assert table.endswith(
        "  'ViT-B-32__openai': { dimSize: 512 },\n"
        + generate.CLIP_COMMENT
        + "  'RN50__cn-clip': { dimSize: 1024 },\n  'ViT-B-16__cn-clip': { dimSize: 512 },\n"
    )
    assert text.split("};", 1)[1] == CONSTANTS.split("};", 1)[1]
    with pytest.raises(PatcherError, match="no CLIP_MODEL_INFO"):
        generate.clip_table("export const OTHER = {};\n", {"RN50__cn-clip": 1024})


def test_the_release_says_how_its_sdk_is_generated(tmp_path: Path) -> None:
    (tmp_path / "open-api" / "bin").mkdir(parents=True)
    script = tmp_path / "open-api" / "bin" / "generate-open-api.sh"
    script.write_text(
        "  npx --yes oazapfts --optimistic --argumentStyle=object --useEnumType spec.json out.ts\n"
    )
    assert generate.oazapfts_flags(tmp_path) == ["--optimistic", "--argumentStyle=object", "--useEnumType"]
    (tmp_path / "mise.toml").write_text(
        '[tools]\n"npm:oazapfts" = "7.5.0"\n[tasks.sdk]\n'
        'run = [\n  "oazapfts --optimistic --allSchemas a.json b.ts",\n]\n'
    )
    assert generate.oazapfts_flags(tmp_path) == ["--optimistic", "--allSchemas"]
    store = manifest.load(Path(__file__).resolve().parents[2])
    assert generate.oazapfts_version(tmp_path, store.by_name("v3")) == "7.5.0"
    (tmp_path / "mise.toml").unlink()
    assert generate.oazapfts_version(tmp_path, store.by_name("v2.2-v2.4")) == "6.4.0"
    with pytest.raises(PatcherError, match="runs no oazapfts"):
        script.unlink()
        generate.oazapfts_flags(tmp_path)


def test_an_unchanged_diff_keeps_the_file_and_its_date(tmp_path: Path) -> None:
    path = tmp_path / "0005.patch"
    diff = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"
    path.write_text(f"Description: d\nLast-Update: 2020-01-01\n---\n{diff}")
    generate._write_kept(path, "Description: d\n", diff)
    assert "Last-Update: 2020-01-01" in path.read_text()
    generate._write_kept(path, "Description: d\n", diff.replace("+b", "+c"))
    assert "Last-Update: 2020-01-01" not in path.read_text() and "+c" in path.read_text()
