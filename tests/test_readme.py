"""The README's Python example runs as written."""
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_readme_python_example_runs(weights_cache, monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text()
    (example,) = re.findall(r"```python\n(.*?)```", readme, re.S)
    monkeypatch.chdir(ROOT)
    exec(compile(example, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "Box(x0=" in printed and "score=" in printed


def test_label_photos_tool_prints_boxes(weights_cache, capsys):
    import sys
    sys.path.insert(0, str(ROOT / "tools"))
    import label_photos

    assert label_photos.main([str(ROOT / "tests/data/dog.jpg"), "--synsets", "dog,bicycle"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{ROOT / 'tests/data/dog.jpg'} (768x576)"
    assert any(line.split()[:2] == ["dog", "n02084071"] for line in lines[1:])
    assert any(line.split()[:2] == ["bicycle", "n02834778"] for line in lines[1:])
