"""The headless runner's bookkeeping (running the chapters is nbval's and
``make lessons``' job, not a unit test's)."""
import pytest

from bnlesson import lessons


def test_chapter_notebooks_in_order_and_selected():
    names = [p.name[:2] for p in lessons.chapter_notebooks()]
    assert names == sorted(names) and names[0] == "01"
    assert [p.name[:2] for p in lessons.chapter_notebooks(["03", "05"])] \
        == ["03", "05"]
    with pytest.raises(SystemExit):
        lessons.chapter_notebooks(["99"])


def test_table_counts_the_chapters_that_ran():
    text = lessons._table([("01_a", 1.5, None), ("02_b", 2.0, "Err: x")])
    assert "Err: x" in text
    assert text.splitlines()[-1].split()[1:] == ["3.5", "1/2", "ok"]
