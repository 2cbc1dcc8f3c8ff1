"""HParams sessions against a real TensorBoard: a local server over a sweep's results (the committed Table 7
sweep's result.json and config.gin files), queried through the HParams plugin's HTTP API."""

from __future__ import annotations

import html
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from t5explore.train.writers import CONFIG_TEXT_TAG, HPARAMS_EVENTS, hparams_of, metrics_of, write_sweep_hparams

REPO = Path(__file__).resolve().parent.parent
SWEEP = REPO / "experiments" / "results" / "transductive" / "t5_table7_span_length"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A copy of the committed sweep's runs (their config.gin and result.json), with the HParams written."""
    out = tmp_path_factory.mktemp("hparams") / SWEEP.name
    for result in sorted(SWEEP.glob("*/result.json")):
        (out / result.parent.name).mkdir(parents=True)
        for name in ("result.json", "config.gin"):
            shutil.copy(result.parent / name, out / result.parent.name / name)
    runs = write_sweep_hparams(out)
    assert len(runs) >= 10 and write_sweep_hparams(out) == runs  # rewriting replaces, never duplicates
    assert all(len(list((out / r).glob("*tfevents*"))) == 1 for r in runs)
    assert (out / HPARAMS_EVENTS).is_file()
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def session_groups(port: int) -> list[dict]:
    """Every session group with every hparam and metric the experiment declares (the dashboard's query)."""
    experiment = post(port, "experiment", {"experimentName": ""})
    columns = [{"hparam": h["name"], "includeInResult": True} for h in experiment["hparamInfos"]]
    columns += [{"metric": m["name"], "includeInResult": True} for m in experiment["metricInfos"]]
    request = {"startIndex": 0, "sliceSize": 1000, "allowedStatuses": STATUSES, "colParams": columns}
    return post(port, "session_groups", request)["sessionGroups"]


def post(port: int, route: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/data/plugin/hparams/{route}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-TensorBoard-Feature-Flags": "{}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def tensorboard(sweep):
    """`tensorboard --logdir SWEEP` on a free localhost port, until it answers with every session loaded."""
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(sweep), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--load_fast=false", "--reload_interval=1"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, expected = time.monotonic() + 180, len(list(sweep.glob("*/result.json")))
        while True:
            try:
                if len(session_groups(port)) == expected:
                    break
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError, KeyError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                stderr = server.stderr.read().decode() if server.poll() is not None and server.stderr else ""
                pytest.fail(f"TensorBoard did not list {expected} sessions within 180 s: {stderr[-2000:]}")
            time.sleep(0.5)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.mark.slow  # a TensorBoard server (it imports TensorFlow: ~10 s on an idle machine)
def test_every_run_its_hparams_and_metrics_are_in_the_dashboard(sweep, tensorboard):
    results = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/result.json")}
    experiment = post(tensorboard, "experiment", {"experimentName": ""})
    hparam_names = {h["name"] for h in experiment["hparamInfos"]}
    metric_tags = {m["name"]["tag"] for m in experiment["metricInfos"]}
    assert {"variant", "seed", "span_corruption.mean_noise_span_length"} <= hparam_names
    assert "hparams/stdlib_module/accuracy" in metric_tags and "hparams/pretrain/eval_loss" in metric_tags

    groups = session_groups(tensorboard)
    sessions = {s["name"].strip("./"): (g["hparams"], s["metricValues"]) for g in groups for s in g["sessions"]}
    assert set(sessions) == set(results)
    for run, result in results.items():
        hparams, metric_values = sessions[run]
        for name, value in hparams_of(result).items():
            assert hparams[name] == value, (run, name)
        got = {m["name"]["tag"]: m["value"] for m in metric_values}
        assert got == pytest.approx(metrics_of(result), rel=1e-6), run  # TensorBoard keeps float32
        assert got  # every run has at least its task score


@pytest.mark.slow
def test_each_run_shows_its_config_as_text(sweep, tensorboard):
    run = sorted(p.parent for p in sweep.glob("*/result.json"))[0]
    url = f"http://127.0.0.1:{tensorboard}/data/plugin/text/text?run={run.name}&tag={CONFIG_TEXT_TAG}/text_summary"
    with urllib.request.urlopen(url, timeout=10) as response:
        (entry,) = json.loads(response.read())
    for line in (run / "config.gin").read_text().splitlines()[:20]:
        assert html.escape(line.strip(), quote=False) in entry["text"]


def test_a_finished_run_in_a_sweep_records_its_session_and_the_sweeps_summary(tmp_path):
    from t5explore.train.writers import record_hparams

    runs = sorted(SWEEP.glob("*/result.json"))[:2]
    for path in runs:
        (tmp_path / path.parent.name).mkdir()
        shutil.copy(path, tmp_path / path.parent.name / "result.json")
    record_hparams(tmp_path / runs[0].parent.name, json.loads(runs[0].read_text()), in_sweep=True)
    assert (tmp_path / runs[0].parent.name / HPARAMS_EVENTS).is_file() and (tmp_path / HPARAMS_EVENTS).is_file()
    assert not (tmp_path / runs[1].parent.name / HPARAMS_EVENTS).exists()  # the other run writes its own
    record_hparams(tmp_path / "standalone", {"variant": "x"}, in_sweep=False)  # no directory: a warning, no error
