"""Reading a ``/metrics`` answer with ``prometheus_client``'s own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

type Sample = tuple[str, frozenset[tuple[str, str]]]


def samples(text: str) -> dict[Sample, float]:
    """Each sample of the scrape: ``(name, labels) -> value``."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict[Sample, float], name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels``; 0 when the scrape has none."""
    return scraped.get((name, frozenset(labels.items())), 0.0)


def label_values(scraped: dict[Sample, float]) -> set[str]:
    """Every label value of the scrape (histogram bounds, ``le``, left out)."""
    return {
        label_value
        for _, labels in scraped
        for label_name, label_value in labels
        if label_name != "le"
    }
