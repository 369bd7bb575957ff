"""The layer contracts (.importlinter) hold, and an import that breaks them fails with the import named."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

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


def test_an_import_that_climbs_a_layer_fails_and_names_the_import(tmp_path):
    root = _copy(tmp_path)
    with (root / "app/mail/html.py").open("a") as fh:
        fh.write("\nfrom app.inbox import lists  # noqa: E402,F401 - a formats module reaching into an area\n")
    done = _lint(root)
    assert done.returncode != 0
    assert "app.mail.html -> app.inbox.lists" in done.stdout


def test_an_area_reaching_into_another_fails(tmp_path):
    root = _copy(tmp_path)
    with (root / "app/inbox/lists.py").open("a") as fh:
        fh.write("\nfrom app.channels import domains  # noqa: E402,F401\n")
    done = _lint(root)
    assert done.returncode != 0
    assert "app.channels is imported by its own modules" in done.stdout and "app.inbox.lists" in done.stdout
