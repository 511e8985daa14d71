"""The README's Python example runs as written."""
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_readme_python_example_runs(weights_cache, monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text()
    library_section = readme[readme.index("## The library in Python"):]
    example = re.search(r"```python\n(.*?)```", library_section, re.S).group(1)
    monkeypatch.chdir(ROOT)
    exec(compile(example, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "Box(x0=" in printed and "score=" in printed
