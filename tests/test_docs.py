"""The repository's pages: a front page of bounded size whose answer is generated, links that land, a code map of
exactly the modules on disk, a reading whose every number is the record's, and prose without tracker jargon.

Budget: ~10 s (the reading's facts read the committed CSVs and JSON files; nothing is trained)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from smlib import tables
from smlib.models.card import INTENDED_USE

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RECORD = ROOT / "runs" / "quick"
sys.path.insert(0, str(ROOT / "benchmarks"))

import reading  # noqa: E402

GIT_FILES = ["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard"]  # tracked or to be


def markdown_files() -> list[Path]:
    """Every Markdown file git tracks (or, outside a checkout, every one under the repository but the venv)."""
    try:
        names = subprocess.run([*GIT_FILES, "*.md"], check=True, capture_output=True, text=True).stdout.split()
        return [ROOT / n for n in names]
    except (OSError, subprocess.CalledProcessError):
        return [p for p in ROOT.rglob("*.md") if ".venv" not in p.parts and ".git" not in p.parts]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|<[^>]+>", "", heading.strip()).lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.M):
        base = slug(heading)
        n = seen.get(base, 0)
        out.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return out


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def broken_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```|`[^`\n]*`", "", path.read_text(), flags=re.S)
    problems = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z+.-]*:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            problems.append(f"{path.relative_to(ROOT)}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{path.relative_to(ROOT)}: {target} (no heading with that anchor)")
    return problems


def test_every_relative_link_of_every_page_lands():
    pages = markdown_files()
    assert README in pages and RECORD / "README.md" in pages and len(pages) > 10
    problems = [p for page in pages for p in broken_links(page)]
    assert not problems, "\n".join(problems)


def test_the_link_check_finds_a_missing_file_and_a_missing_anchor(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "b.md").write_text("# Title\n\n## A section: `code`\n")
    page = tmp_path / "a.md"
    page.write_text("[ok](b.md#a-section-code) [gone](c.md) [no anchor](b.md#nowhere) `[code](x.md)` "
                    "[web](https://example.org/x) ![img](b.md)\n")
    assert broken_links(page) == ["a.md: c.md (no such file)", "a.md: b.md#nowhere (no heading with that anchor)"]


def test_the_front_page_is_short_and_opens_with_the_answer_and_the_commands():
    text = README.read_text()
    assert len(text.encode()) <= 15_000
    head = "\n".join(text.splitlines()[:60])
    for needed in (tables.ANSWER_START, tables.ANSWER_END, "make run", "make test"):
        assert needed in head, needed


def block(text: str, start: str, end: str) -> str:
    assert text.count(start) == 1 and text.count(end) == 1, (start, end)
    return text.split(start, 1)[1].split(end, 1)[0]


def test_the_answer_and_the_record_tables_are_what_the_generator_writes_now():
    """Both generated blocks as committed are what update_readme writes from the committed record's tables."""
    answer = tables.answer_markdown(RECORD)
    assert answer in block(README.read_text(), tables.ANSWER_START, tables.ANSWER_END)
    page = block((RECORD / "README.md").read_text(), tables.README_START, tables.README_END)
    assert (RECORD / "results.md").read_text().strip() in page
    for variant in ("verbatim", "disjoint", "heldout"):
        assert f"| `{variant}` |" in answer


def test_the_answer_follows_an_edited_record(tmp_path):
    import pandas as pd

    record = tmp_path / "quick"
    record.mkdir()
    for name in ("results_long.csv", "paired_differences.csv"):
        shutil.copy(RECORD / name, record / name)
    long = pd.read_csv(record / "results_long.csv")
    rows = (long["variant"] == "heldout") & (long["condition"] == "v3_contrastive")
    long.loc[rows, "prefix_top1"] = [0.5, 0.6, 0.7]
    long.to_csv(record / "results_long.csv", index=False)
    assert "| `heldout` | 0.600 [" in tables.answer_markdown(record)


def test_update_readme_writes_both_blocks_and_refuses_a_page_without_its_markers(tmp_path, monkeypatch):
    record = tmp_path / "quick"
    record.mkdir()
    calls = []
    monkeypatch.setattr(tables, "write_results_table", lambda d: calls.append(d))
    monkeypatch.setattr(tables, "answer_markdown", lambda d: "THE ANSWER")
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{tables.ANSWER_START}\nold\n{tables.ANSWER_END}\nb\n")
    tables.update_readme(record, readme)
    assert "THE ANSWER" in readme.read_text() and "old" not in readme.read_text() and calls == [record]
    page = (record / "README.md").read_text()  # a record without a page gets one, for the tables to fill
    assert tables.README_START in page and tables.README_END in page
    (record / "README.md").write_text("# a page without the markers\n")
    readme.write_text(f"a\n{tables.ANSWER_START}\nold\n{tables.ANSWER_END}\nb\n")
    calls.clear()
    with pytest.raises(RuntimeError, match="results:start"):
        tables.update_readme(record, readme)
    assert "old" in readme.read_text() and not calls  # nothing written, the tables not rebuilt


def test_every_number_of_the_reading_is_the_labelled_value_of_the_record():
    values = reading.facts(RECORD)
    text = (RECORD / "README.md").read_text()
    assert len(reading.MARKED.findall(text)) > 80
    assert reading.check_reading(text, values) == []
    for label in ("search.best_any_check", "disjoint.trained_people", "disjoint.train_people", "disjoint.dev_people"):
        assert f"<!--={label}-->" in text  # the numbers that are not the record's own are labelled too
    if "previous.disjoint.top1.v3_contrastive" in values:  # needs the commit of the previous record (git history)
        assert "<!--=previous.disjoint.top1.v3_contrastive-->" in text


def test_the_reading_check_fails_on_an_edited_record_and_on_an_unlabelled_number(tmp_path):
    text = (RECORD / "README.md").read_text()
    values = dict(reading.facts(RECORD))
    values["heldout.top1.v3_contrastive"] = "0.081 [0.020, 0.136]"  # as if one run of the record had changed
    problems = reading.check_reading(text, values)
    assert len(problems) == 1 and problems[0].startswith("heldout.top1.v3_contrastive: the reading says '0.078")
    values = reading.facts(RECORD)
    added = text.replace("## The reading", "## The reading\n\nIt reached 0.74 on seed 43, `0.9` in code.", 1)
    assert reading.check_reading(added, values) == ["unlabelled number '0.74' in: It reached 0.74 on seed 43, "
                                                    "  in code.", "unlabelled number '43' in: It reached 0.74 on "
                                                    "seed 43,   in code."]
    wrong_label = text.replace("<!--=record.K-->", "<!--=record.width-->", 1)
    assert reading.check_reading(wrong_label, values) == ["record.width: no such label in benchmarks/reading.py's output"]


def test_the_committed_reading_output_is_what_the_script_prints_now():
    assert (ROOT / "benchmarks" / "reading_quick.txt").read_text() == reading.reading(RECORD) + "\n"


def test_the_intended_use_every_card_carries_lives_in_its_page_and_the_front_page_links_it():
    assert INTENDED_USE in (ROOT / "docs" / "intended_use.md").read_text()
    section = README.read_text().split("## Intended use and limits", 1)[1].split("\n## ", 1)[0]
    assert "(docs/intended_use.md)" in section and "re-identification" in section


JARGON = re.compile(r"(?i:\b(?:issue|ticket)s? ?#?\d+|\bthe issue\b)|DESIGN\.md|ARCHITECTURE\.seed")


def test_no_prose_names_a_tracker_issue_or_a_design_note_outside_the_repository():
    """Pages, docstrings, comments, params and notebooks; committed run files and benchmark outputs (text and JSON
    written by a script at the time) are the record of what was printed, and stay as they are."""
    names = subprocess.run(GIT_FILES, check=True, capture_output=True, text=True).stdout
    hits = []
    for name in names.split():
        path = ROOT / name
        if (name.startswith("runs/") or re.match(r"benchmarks/.*\.(txt|json|png)$", name)
                or path.suffix not in (".md", ".py", ".yaml", ".yml", ".ipynb", ".toml", ".cfg", ".txt", "")
                or not path.is_file()):
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if JARGON.search(line) and name != "tests/test_docs.py":
                hits.append(f"{name}:{n}: {line.strip()[:100]}")
    assert not hits, "\n".join(hits)
