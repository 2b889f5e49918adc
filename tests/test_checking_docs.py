"""docs/checking.md shows docs/examples/layer_mlp.py whole: the page and the file agree."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_page_shows_the_example_module_verbatim() -> None:
    page = (ROOT / "docs" / "checking.md").read_text("utf-8")
    module = (ROOT / "docs" / "examples" / "layer_mlp.py").read_text("utf-8")
    assert f"```python\n{module}```" in page
