"""The Grafana dashboard (docs/grafana/elicence.json) reads only metrics the service
exports: every elicence_* name in its queries is one a real app's /metrics shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.samples import business_licence

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "elicence.json"
METRIC = re.compile(r"\belicence_[a-z_]+")


def queries(dashboard: dict) -> list[str]:
    return [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ] + [
        variable["definition"]
        for variable in dashboard["templating"]["list"]
        if variable.get("definition")
    ]


def exported(service) -> set[str]:
    """Every sample name /metrics shows after a verification and a refused request."""
    batch = service.issue([business_licence(0)])
    assert service.verify(batch.documents[0]).status_code == 200
    assert service.verify(batch.documents[0], key="elk_" + "x" * 43).status_code == 401
    text = service.client.get("/metrics").text
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def test_dashboard_is_grafana_json_with_a_query_in_every_panel():
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    assert dashboard["uid"] and dashboard["title"]
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"])


def test_every_metric_the_dashboard_queries_is_exported_by_the_service(service):
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    queried = {name for query in queries(dashboard) for name in METRIC.findall(query)}
    assert queried  # the check below would pass on a dashboard that queries nothing
    assert queried <= exported(service), sorted(queried - exported(service))


def test_dashboard_shows_the_five_views_of_the_operator_page():
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    text = " ".join(queries(dashboard))
    for needed in (
        "elicence_verdicts_total",
        "elicence_http_request_duration_seconds_bucket",
        'status=~"4..|5.."',
        "elicence_chain_head",
        "elicence_audit_backlog",
    ):
        assert needed in text
