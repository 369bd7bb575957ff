"""The layer contracts (.importlinter) hold, and an import that breaks them fails with the import named."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache", "--config", str(root / ".importlinter")], cwd=root,
                          capture_output=True, text=True, timeout=120)


def _copy(tmp_path: Path) -> Path:
    for name in ("app", "jobs"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_the_tree_keeps_every_contract():
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize("module, line, says", [
    # a formats module reaching up into an area: the layers contract names the import
    ("app/mail/html.py", "from app.inbox import lists", ["app.mail.html -> app.inbox.lists"]),
    # an area reaching into another area's modules: that area's contract names the importer
    ("app/inbox/lists.py", "from app.channels import domains",
     ["app.channels is imported by its own modules", "app.inbox.lists"]),
])
def test_an_import_that_breaks_a_contract_fails_and_is_named(tmp_path, module, line, says):
    root = _copy(tmp_path)
    with (root / module).open("a") as fh:
        fh.write(f"\n{line}  # noqa: E402,F401\n")
    done = _lint(root)
    assert done.returncode != 0
    for text in says:
        assert text in done.stdout, done.stdout
