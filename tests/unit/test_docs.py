"""The docs hold up: every design section that code or docs cite exists in docs/design.md,
citations use one form, and the files that docs link to or name are there.

The repository stands alone: a citation resolves only against the numbered headings of
its own docs/design.md ("## 4. Replication ...", "### 2.1 Credit limits").
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DESIGN = ROOT / "docs" / "design.md"
THIS = Path(__file__).resolve()

# Where citations may appear: code, tests, benchmarks, scripts, the API and the docs.
SCANNED_DIRS = ("src", "tests", "benchmarks", "scripts", "proto")
SCANNED_SUFFIXES = {".py", ".pyi", ".lua", ".proto", ".md", ".toml", ".cfg", ".txt"}
SKIPPED_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
LINKED_DOCS = ("README.md", "CHANGELOG.md", "benchmarks/README.md", "docs/*.md")

SECTION = "\N{SECTION SIGN}"
HEADING = re.compile(r"^#{2,6}\s+(\d+(?:\.\d+)*)\.?\s+\S", re.MULTILINE)
CITATION = re.compile(SECTION + r"\s*(\d+(?:\.\d+)*)")
# The one form outside docs/design.md: "design §N" (design.md itself may say "§N").
CITED_FORM = re.compile(r"\bdesign " + SECTION + r"\d")
OLD_FORM = re.compile(r"\bDESIGN\b")
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
TEST_PATH = re.compile(r"\btests/[\w/]+\.py\b")


def _scanned_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
    for top in SCANNED_DIRS:
        for path in sorted((ROOT / top).rglob("*")):
            if (
                path.is_file()
                and path.suffix in SCANNED_SUFFIXES
                and not SKIPPED_PARTS.intersection(path.parts)
                and not any(part.endswith(".egg-info") for part in path.parts)
                and path.resolve() != THIS
            ):
                files.append(path)
    return [path for path in files if path.is_file()]


def _lines(path: Path) -> list[tuple[int, str]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return list(enumerate(text.splitlines(), start=1))


def _where(path: Path, number: int) -> str:
    return f"{path.relative_to(ROOT)}:{number}"


def design_sections() -> set[str]:
    """The section numbers of docs/design.md's numbered headings."""
    return set(HEADING.findall(DESIGN.read_text(encoding="utf-8")))


def test_design_sections_are_numbered_once_and_nested() -> None:
    numbers = HEADING.findall(DESIGN.read_text(encoding="utf-8"))
    assert numbers, "docs/design.md has no numbered sections"
    assert len(numbers) == len(set(numbers)), f"a section number repeats: {numbers}"
    orphans = [n for n in numbers if "." in n and n.rsplit(".", 1)[0] not in numbers]
    assert not orphans, f"subsections without their section: {orphans}"


def test_every_cited_section_exists_in_the_design_doc() -> None:
    sections = design_sections()
    unknown = [
        f"{_where(path, number)}: {SECTION}{cited} ({line.strip()})"
        for path in _scanned_files()
        for number, line in _lines(path)
        for cited in CITATION.findall(line)
        if cited not in sections
    ]
    assert not unknown, (
        f"cited sections missing from docs/design.md (it has {sorted(sections)}):\n"
        + "\n".join(unknown)
    )


def test_citations_use_one_form() -> None:
    wrong = []
    for path in _scanned_files():
        for number, line in _lines(path):
            if OLD_FORM.search(line):
                wrong.append(f"{_where(path, number)}: {line.strip()}")
            elif path != DESIGN and SECTION in line:
                cited = len(CITATION.findall(line))
                if len(CITED_FORM.findall(line)) < cited:
                    wrong.append(f"{_where(path, number)}: {line.strip()}")
    assert not wrong, 'cite as "design ' + SECTION + 'N" (docs/design.md):\n' + "\n".join(wrong)


def _linked_docs() -> list[Path]:
    docs: list[Path] = []
    for pattern in LINKED_DOCS:
        docs.extend(sorted(ROOT.glob(pattern)))
    return docs


def test_relative_links_in_the_docs_point_to_files() -> None:
    broken = []
    for doc in _linked_docs():
        for number, line in _lines(doc):
            for target in MARKDOWN_LINK.findall(line):
                if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                    continue  # a URL or an anchor in the same file
                path = target.split("#", 1)[0]
                if not (doc.parent / path).exists():
                    broken.append(f"{_where(doc, number)}: {target}")
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_named_test_files_exist() -> None:
    missing = [
        f"{_where(path, number)}: {named}"
        for path in _scanned_files()
        for number, line in _lines(path)
        for named in TEST_PATH.findall(line)
        if not (ROOT / named).exists()
    ]
    assert not missing, "test files named but not there:\n" + "\n".join(missing)
