"""The Grafana dashboard and rules: valid structure, parseable PromQL, only metrics we expose."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from deploy_helpers import (
    DASHBOARD_PATH,
    DASHBOARDS,
    all_expressions,
    exposed_sample_names,
    iter_panels,
    label_values_metric,
    load_dashboard,
    load_rules,
    panel_queries,
    populated_metrics,
    selector_names,
    substitute,
    used_variables,
    variable_names,
)

DS_REF = {"type": "prometheus", "uid": "${datasource}"}
KNOWN_TYPES = {"row", "timeseries", "stat", "gauge", "bargauge", "table", "state-timeline",
               "status-history", "heatmap", "text", "piechart", "barchart"}
BUILTIN_SERIES = {"up"}  # produced by Prometheus itself, not by voiceops


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


@pytest.fixture(scope="module")
def exposed() -> set[str]:
    return exposed_sample_names(populated_metrics())


def test_dashboard_header(dashboard: dict[str, Any]) -> None:
    """The dashboard has a uid, a title, a modern integer schemaVersion and panels."""
    assert isinstance(dashboard["uid"], str) and dashboard["uid"]
    assert isinstance(dashboard["title"], str) and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 39
    assert dashboard["panels"]


def test_no_import_placeholders() -> None:
    """No __inputs / ${DS_…}: file provisioning cannot resolve them ("Datasource … not found")."""
    text = DASHBOARD_PATH.read_text()
    assert "__inputs" not in json.loads(text)
    assert "${DS_" not in text


def test_panel_ids_unique_and_types_known(dashboard: dict[str, Any]) -> None:
    """Every panel (nested ones included) has a unique integer id and a known type."""
    panels = list(iter_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"
    unknown = {p["type"] for p in panels} - KNOWN_TYPES
    assert not unknown, f"unknown panel types: {unknown}"


def test_grid_positions_fit_and_do_not_overlap(dashboard: dict[str, Any]) -> None:
    """Every gridPos has positive integer sizes within 24 columns, and no two panels overlap."""
    cells: dict[tuple[int, int], str] = {}
    for panel in iter_panels(dashboard):
        pos = panel["gridPos"]
        assert all(isinstance(pos[k], int) for k in "hwxy"), panel["title"]
        assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] >= 0 and pos["y"] >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, f"{panel['title']}: wider than the grid"
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                other = cells.setdefault((x, y), panel["title"])
                assert other == panel["title"], f"{panel['title']!r} overlaps {other!r}"


def test_panels_use_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    """Every data panel and target queries Prometheus through ${datasource}, with unique refIds."""
    for panel in iter_panels(dashboard):
        if panel["type"] == "row":
            continue
        title = panel["title"]
        assert panel["datasource"] == DS_REF, title
        targets = panel["targets"]
        assert targets, f"{title}: no targets"
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), f"{title}: duplicate refIds"
        for target in targets:
            assert target["datasource"] == DS_REF, title
            assert target["expr"].strip(), f"{title}: empty expr"


def test_templating(dashboard: dict[str, Any]) -> None:
    """A datasource variable exists, query variables use it, queries use only defined variables."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    for var in variables.values():
        if var["type"] == "query":
            assert var["datasource"] == DS_REF, var["name"]
    defined = variable_names(dashboard)
    for query in panel_queries(dashboard):
        undefined = {v for v in used_variables(query.expr) if not v.startswith("__")} - defined
        assert not undefined, f"{query.panel}: undefined variables {undefined}"


@pytest.mark.parametrize(("where", "expr"), all_expressions(), ids=lambda v: str(v)[:60])
def test_promql_parses(where: str, expr: str) -> None:
    """Each dashboard query (variables substituted) and each rule expression is valid PromQL."""
    assert selector_names(expr), f"{where}: selects no metric"


def test_promql_parser_rejects_broken_queries() -> None:
    """The parser used above does catch syntax errors (so the parse test can fail)."""
    with pytest.raises(ValueError, match="unclosed left parenthesis"):
        selector_names(substitute("sum(rate(voiceops_jobs_total[$__rate_interval])"))


def test_every_metric_used_is_exposed(dashboard: dict[str, Any], exposed: set[str]) -> None:
    """Every metric in the dashboard, its variables and the rules is in our real exposition."""
    recorded = {r["record"] for r in load_rules() if "record" in r}
    used: dict[str, str] = {}
    for where, expr in all_expressions():
        for name in selector_names(expr):
            used.setdefault(name, where)
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            metric = label_values_metric(var["query"]["query"])
            assert metric, f"variable {var['name']}: expected label_values(metric, label)"
            used.setdefault(metric, f"variable {var['name']}")
    missing = {n: w for n, w in used.items() if n not in exposed | recorded | BUILTIN_SERIES}
    assert not missing, f"not in the exposition: {missing}"


def test_every_metric_family_is_on_the_dashboard_or_in_rules(exposed: set[str]) -> None:
    """No voiceops metric is left out of the dashboard and rules (a new metric needs a panel)."""
    used = {name for _, expr in all_expressions() for name in selector_names(expr)}
    used |= {label_values_metric(v["query"]["query"]) or ""
             for v in load_dashboard()["templating"]["list"] if v["type"] == "query"}
    suffixes = ("_bucket", "_count", "_sum", "_created")
    families = {n for n in exposed if not n.endswith(suffixes)}
    histograms = {n[: -len("_bucket")] for n in exposed if n.endswith("_bucket")}
    used_histograms = {n[: -len("_bucket")] for n in used if n.endswith("_bucket")}
    assert families - used == set()
    assert histograms - used_histograms == set()


def test_grafana_provisioning() -> None:
    """The dashboard provider reads the install path; the datasource has the fixed uid."""
    provider = yaml.safe_load((DASHBOARDS / "provisioning/dashboards/voiceops.yml").read_text())
    assert provider["apiVersion"] == 1
    [entry] = provider["providers"]
    assert entry["type"] == "file" and entry["options"]["path"] == "/opt/voiceops/dashboards"
    datasources = yaml.safe_load(
        (DASHBOARDS / "provisioning/datasources/prometheus.example.yml").read_text())
    assert datasources["apiVersion"] == 1
    [ds] = datasources["datasources"]
    default = next(v for v in load_dashboard()["templating"]["list"] if v["name"] == "datasource")
    assert ds["type"] == "prometheus" and ds["uid"] == default["current"]["value"] == "prometheus"
