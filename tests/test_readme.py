"""The README and the guides in docs/ hold: their Python example runs, every relative link
and anchor resolves, and every flag they show with a `python -m pipeline…` command is one
of that command's options."""
import contextlib
import importlib
import io
import re
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
# Each command, and the function that runs it on an argv.
COMMANDS = {"pipeline": "pipeline.run:run", "pipeline.render": "pipeline.render:run",
            "pipeline.evaluate": "pipeline.evaluate:main", "pipeline.export": "pipeline.export:main",
            "pipeline.train": "pipeline.train:main"}


def test_library_example_runs(weights_cache, monkeypatch, capsys):
    guide = (ROOT / "docs" / "library.md").read_text()
    example = re.search(r"```python\n(.*?)```", guide, re.S).group(1)
    monkeypatch.chdir(ROOT)
    exec(compile(example, "docs/library.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "Box(x0=" in printed and "score=" in printed


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but - and _ dropped,
    spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_slug_is_githubs():
    assert slug("The job's options: `python -m pipeline`") == "the-jobs-options-python--m-pipeline"
    assert slug("Scheduled and incremental runs") == "scheduled-and-incremental-runs"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(doc):
    checked = 0
    for target in links(doc):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        resolved = (doc.parent / file).resolve() if file else doc
        assert resolved.exists(), f"{doc.name}: link to {target}: no such file"
        if anchor:
            assert anchor in anchors(resolved), f"{doc.name}: link to {target}: no such heading"
        checked += 1
    if doc.name == "README.md" and doc.parent == ROOT:
        assert checked >= 10  # the README links its guides


def shown_commands(doc: Path) -> list[tuple[str, str]]:
    """(command, its text) for each `python -m pipeline…` the document shows: in code
    blocks with continuation lines (a trailing backslash, or the indented lines of a
    usage synopsis) joined, and in inline code."""
    text = doc.read_text()
    shown = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        lines = block.replace("\\\n", " ").split("\n")
        for i, line in enumerate(lines):
            if "python -m pipeline" in line:
                following = []
                for more in lines[i + 1:]:  # a synopsis's indented lines of [--flag …]
                    if not more.startswith(" "):
                        break
                    following.append(more)
                shown.append(" ".join([line, *following]))
    text_outside = re.sub(r"```.*?```", "", text, flags=re.S)
    shown += re.findall(r"`([^`]*python -m pipeline[^`]*)`", text_outside)
    found = []
    for line in shown:
        for match in re.finditer(r"python -m (pipeline(?:\.\w+)?)\b(.*)", line):
            # The command's own text: up to a shell redirection, pipe or comment.
            found.append((match.group(1), re.split(r"\s(?:>>?|\||#|&&)\s", match.group(2))[0]))
    return found


def command_flags(command: str) -> set[str]:
    """The flags a command's --help lists, and Beam's options (each command takes them)."""
    module, function = COMMANDS[command].split(":")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        getattr(importlib.import_module(module), function)(["--help"])
    flags = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", out.getvalue()))
    assert "--help" in flags, f"python -m {command} --help printed no help"
    return flags | {f"--{name}" for name in PipelineOptions([]).get_all_options()}


def test_every_flag_shown_is_an_option_of_its_command():
    known = {command: command_flags(command) for command in COMMANDS}
    shown = 0
    for doc in DOCS:
        for command, text in shown_commands(doc):
            assert command in known, f"{doc.name}: python -m {command} is not a command"
            for flag in re.findall(r"(?<![\w-])--[a-z][\w-]*", text):
                assert flag in known[command], (
                    f"{doc.relative_to(ROOT)}: `python -m {command} … {flag}`: not an option")
                shown += 1
    assert shown > 100  # the docs do show commands with their flags


def test_a_wrong_flag_would_be_caught(tmp_path):
    doc = tmp_path / "guide.md"
    doc.write_text("Run `python -m pipeline.export --labels out --formt coco`.\n\n"
                   "```bash\npython -m pipeline --input 'a/*' \\\n  --synset dog\n```\n")
    commands = shown_commands(doc)
    assert sorted(command for command, _ in commands) == ["pipeline", "pipeline.export"]
    flags = {flag for _, text in commands for flag in re.findall(r"--[a-z][\w-]*", text)}
    assert {"--formt", "--synset"} <= flags
    assert "--formt" not in command_flags("pipeline.export")
    assert "--synset" not in command_flags("pipeline")


def test_the_readme_output_table_names_every_column():
    from transforms.io.records import ERRORS_SCHEMA, LABELS_SCHEMA, SKIPPED_SCHEMA

    readme = (ROOT / "README.md").read_text()
    output = readme[readme.index("## Output"):readme.index("## Quality to expect")]
    for file, schema in (("labels", LABELS_SCHEMA), ("errors", ERRORS_SCHEMA),
                         ("skipped", SKIPPED_SCHEMA)):
        row = next(line for line in output.splitlines() if line.startswith(f"| `{file}-*.parquet`"))
        named = set(re.findall(r"`(\w+)`", row))
        sources = {"source_size", "source_modified", "content_sha256"}
        missing = set(schema.names) - named - (sources if "the source columns" in row else set())
        assert not missing, f"README's {file} row does not name {sorted(missing)}"
