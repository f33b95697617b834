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


def test_note_run_opens_a_full_copy_with_its_record():
    import nbformat
    title = nbformat.v4.new_markdown_cell("# 01")
    nb = nbformat.v4.new_notebook(cells=[title])
    lessons.note_run(nb, 123.4)
    run = nb.metadata["bnlesson_run"]
    assert set(run) == {"machine", "device", "torch", "date", "seconds"}
    assert run["seconds"] == 123
    assert nb.cells[0].source.startswith("> **Full-profile run**")
    assert nb.cells[1].source == "# 01"
    nbformat.validate(nb)
