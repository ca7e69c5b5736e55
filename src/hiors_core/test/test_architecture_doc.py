"""docs/ARCHITECTURE.md lists every registered topic (the registry is the one home; the page must not fall behind)."""

from pathlib import Path

from hiors_core import topics


def test_every_topic_is_in_the_architecture_page():
    page = (Path(__file__).resolve().parents[3] / "docs" / "ARCHITECTURE.md").read_text()
    missing = [n for n in topics.TOPICS if f"`{n}`" not in page]
    assert not missing, f"docs/ARCHITECTURE.md lacks topics {missing}"
