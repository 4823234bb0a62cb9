"""The documents hold for a new user: the files they name exist, and commands copied from them work."""

import os
import re

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOCUMENTS = ["README.md", "python/README.md"] + [
    os.path.join("docs", name) for name in sorted(os.listdir(os.path.join(REPO, "docs"))) if name.endswith(".md")
]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
# A file of the repository named in a command: a relative path ending in a source or config suffix.
PATH_TOKEN = re.compile(r"(?<![\w/.$:-])((?:\.\./|\./)?[\w.-]+(?:/[\w.-]+)+\.(?:py|md|toml|go|sh))\b")


def read(document):
    with open(os.path.join(REPO, document), encoding="utf-8") as f:
        return f.read()


def blocks(text):
    return FENCE.findall(text)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_named_documents_exist(document):
    """Every ``something.md`` a document cites is in the repository (docs/performance.md cited a
    design.md that is not)."""
    present = set()
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "node_modules"]
        present.update(f for f in files if f.endswith(".md"))
    for name in re.findall(r"[\w./-]*\b[\w-]+\.md\b", read(document)):
        assert os.path.basename(name) in present, f"{document} cites {name}, which is not in the repository"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_commands_have_no_table_escapes(document):
    """A ``\\|`` is a table's escape; copied into a shell (inside quotes) it is a literal backslash
    and turns a benchmark regexp into one that matches nothing."""
    text = read(document)
    command = re.compile(r"^(go |bash |bin/|scaler|\S*python|SCALER_\w+=)")
    spans = [span for span in re.findall(r"`([^`\n]+)`", text) if command.match(span)] + blocks(text)
    for span in spans:
        assert "\\|" not in span, f"{document}: {span.strip()[:100]!r} has a stray \\|"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_paths_in_command_blocks_exist(document):
    """Paths in a command block exist where the block runs them: the repository root, or the
    directory of a ``cd DIR`` earlier in the block (python/README.md ran ``python bench/...``
    from ``python/``, but bench/ is at the root)."""
    for block in blocks(read(document)):
        cwd = REPO
        for line in block.splitlines():
            line = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
            moved = re.match(r"\s*cd\s+(\S+)\s*(?:&&|$)", line)
            if moved:
                cwd = os.path.normpath(os.path.join(cwd, moved.group(1)))
            for path in PATH_TOKEN.findall(line):
                if path.split("/")[0] in ("bin", ".venv") or "/bin/" in path or "/.venv/" in path:
                    continue  # built or installed, not in the checkout
                full = os.path.normpath(os.path.join(cwd, path))
                assert os.path.exists(full), (
                    f"{document}: `{line.strip()}` names {path}, which is not at {os.path.relpath(full, REPO)}"
                )
