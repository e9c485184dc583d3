"""Author-year labels in the bibliography, matching the author-year citations in the text.

``bibtex_reference_style: author_year`` makes a citation read "Celledoni et al., 2023" in the text, but the
list on the References page keeps pybtex's alpha labels ("[CMO+23]") unless the formatting style says
otherwise. This registers a pybtex formatting style ``author_year`` (pybtex's ``plain`` entries, sorted by
author, year and title) whose labels are written like the citations: "Presnov, 2002", "Haber and Ruthotto,
2017", "Celledoni et al., 2023", with a, b, ... appended when two entries would get the same label. Select it
with ``bibtex_default_style: author_year`` in ``_config.yml``.
"""

from __future__ import annotations

from collections import Counter

from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle


def _last_name(person) -> str:
    return Text(*person.rich_last_names).render_as("text")


def author_year_label(entry) -> str:
    """The label of one entry: authors (or editors) as in the text's citations, a comma, the year."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_last_name(person) for person in persons]
    if not names:
        authors = entry.fields.get("key", entry.key)
    elif len(names) == 1:
        authors = names[0]
    elif len(names) == 2:
        authors = f"{names[0]} and {names[1]}"
    else:
        authors = f"{names[0]} et al."
    return f"{authors}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabelStyle(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [author_year_label(entry) for entry in entries]
        repeated = Counter(labels)
        seen: Counter = Counter()
        for label in labels:
            if repeated[label] > 1:
                seen[label] += 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            else:
                yield label


class AuthorYearStyle(PlainStyle):
    default_label_style = "author_year"
    default_sorting_style = "author_year_title"


def setup(app):
    register_plugin("pybtex.style.labels", "author_year", AuthorYearLabelStyle)
    register_plugin("pybtex.style.formatting", "author_year", AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
