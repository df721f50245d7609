"""The documentation's links: README.md and docs/*.md.

Every relative link (``[text](path#anchor)``, images included) must name a
file of the repository, and every ``#anchor`` a heading of the Markdown file
it points to, with GitHub's heading ids (lower case; punctuation other than
``-`` and ``_`` dropped; spaces to ``-``; a repeated id gets ``-1``, ``-2``
...). Every page under docs/ must be reachable from the README. Headings
inside fenced code blocks (the ``#`` comments of shell listings) are not
headings.
"""

import collections
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def unfenced_lines(text):
  """The lines of ``text`` outside fenced code blocks (and not the fences)."""
  fenced = False
  for line in text.splitlines():
    if line.lstrip().startswith("```"):
      fenced = not fenced
    elif not fenced:
      yield line


def heading_ids(text):
  """GitHub's ids of the Markdown headings of ``text``, in order."""
  ids, seen = [], collections.Counter()
  for line in unfenced_lines(text):
    match = re.match(r"^#{1,6} +(.*?)\s*#*\s*$", line)
    if not match:
      continue
    slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
    ids.append(slug if not seen[slug] else f"{slug}-{seen[slug]}")
    seen[slug] += 1
  return ids


def links(text):
  """Relative link targets of ``text`` outside fenced code blocks."""
  return [t for line in unfenced_lines(text) for t in LINK.findall(line)
          if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]  # http:, mailto:


def read(path):
  with open(os.path.join(ROOT, path), encoding="utf-8") as f:
    return f.read()


def test_heading_ids_follow_github():
  text = ("# Results on Kodak\n## Code search: better codes\n```sh\n# 1. x\n```\n"
          "### `tools/encoder.py` and `--bpp`\n## Results on Kodak\n")
  assert heading_ids(text) == ["results-on-kodak", "code-search-better-codes",
                               "toolsencoderpy-and---bpp", "results-on-kodak-1"]


@pytest.mark.parametrize("page", PAGES)
def test_links_resolve(page):
  broken = []
  for target in links(read(page)):
    path, _, anchor = target.partition("#")
    resolved = (os.path.normpath(os.path.join(os.path.dirname(page), path))
                if path else page)
    if not os.path.exists(os.path.join(ROOT, resolved)):
      broken.append(f"{target}: no file {resolved}")
    elif anchor and resolved.endswith(".md") and (
        anchor not in heading_ids(read(resolved))):
      broken.append(f"{target}: no heading #{anchor} in {resolved}")
  assert not broken, f"{page}: " + "; ".join(broken)


def test_every_docs_page_is_linked_from_the_readme():
  linked = {os.path.normpath(t.partition("#")[0]) for t in links(read("README.md"))}
  assert [p for p in PAGES[1:] if p not in linked] == []
