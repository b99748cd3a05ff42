"""Trust and exposure: what a bundle may load, what the service shows, and who may call it.

Everything here runs the real CLI and real servers: the operator's settings decide what is loaded
(pickle, skops types, an expected digest), a card cannot point outside its bundle, the docs show no
row of the reference data, a foreign multiprocess directory is left alone, and a rotated key file
takes effect without a restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from lucidserve.bundle.schema import build_schemas
from lucidserve.bundle.store import read_card, sha256_file, write_card
from lucidserve.server.multiprocess import MARKER
from tests.support.models import NEWSGROUPS, package_text_model, save_custom_skops_model
from tests.support.processes import (
    BIN,
    REPO,
    Service,
    free_port,
    start_process,
    start_service,
    wait_until,
)

IRIS_SAMPLE = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
PYTHONPATH = {"PYTHONPATH": str(REPO)}


def refused_start(
    bundle: Path, log: Path, env: Mapping[str, str] | None = None, *, workers: int = 1
) -> str:
    """Run `lucidserve serve`, expect it to exit non-zero before serving; returns its output."""
    port = free_port()
    argv = [
        str(BIN / "lucidserve"), "serve", "--host", "127.0.0.1", "--port", str(port),
        "--model-dir", str(bundle), "--workers", str(workers),
    ]  # fmt: skip
    process = start_process(argv, log, env=env, name="lucidserve")
    try:
        code = process.proc.wait(timeout=90)
    finally:
        process.stop()
    output = process.output()
    assert code != 0, output
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    return output


def copy_bundle(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for entry in source.iterdir():
        (target / entry.name).write_bytes(entry.read_bytes())
    return target


def predicts(service: Service, sample: Mapping[str, object]) -> bool:
    response = service.client.post("/v1/predict", json={"samples": [sample]})
    assert response.status_code == 200, response.text
    return True


# --- pickle and joblib: the operator's decision -------------------------------------------------


@pytest.fixture
def pickle_bundle(iris_bundle: Path, tmp_path: Path) -> Path:
    """The iris model re-saved as a pickle bundle, as a team's own bundle might come."""
    import skops.io as sio

    bundle = copy_bundle(iris_bundle, tmp_path / "pickled")
    card = read_card(bundle)
    estimator = sio.load(bundle / card.estimator_file, trusted=card.trusted_types)
    (bundle / card.estimator_file).unlink()
    (bundle / "model.pkl").write_bytes(pickle.dumps(estimator))
    write_card(
        bundle,
        card.model_copy(
            update={
                "estimator_file": "model.pkl",
                "estimator_format": "pickle",
                "estimator_sha256": sha256_file(bundle / "model.pkl"),
                "trusted_types": [],
            }
        ),
    )
    return bundle


def test_a_pickle_bundle_is_refused_without_allow_pickle(
    pickle_bundle: Path, tmp_path: Path
) -> None:
    output = refused_start(pickle_bundle, tmp_path / "refused.log")
    assert "LUCIDSERVE_ALLOW_PICKLE=true" in output
    assert "runs whatever code it contains" in output


def test_a_pickle_bundle_is_served_with_allow_pickle(pickle_bundle: Path, tmp_path: Path) -> None:
    env = {"LUCIDSERVE_ALLOW_PICKLE": "true"}
    service = start_service(pickle_bundle, tmp_path / "service.log", env=env)
    try:
        assert predicts(service, IRIS_SAMPLE)
    finally:
        service.stop()


# --- skops types: named by the packager, recorded in the card, nothing more at load -------------


def run_package(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "lucidserve"), "package", *args],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **PYTHONPATH},
    )  # fmt: skip


def package_trusted_doubler(tmp_path: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The custom-type skops model packaged with `--trust` naming its type: (bundle, result)."""
    model, reference = save_custom_skops_model(tmp_path)
    out = tmp_path / "bundle"
    done = run_package(
        str(model), "--reference", str(reference), "--out", str(out),
        "--trust", "tests.support.models.Doubler",
    )  # fmt: skip
    return out, done


def test_package_refuses_a_custom_skops_type_until_trust_names_it(tmp_path: Path) -> None:
    model, reference = save_custom_skops_model(tmp_path)
    out = tmp_path / "bundle"
    refused = run_package(str(model), "--reference", str(reference), "--out", str(out))
    assert refused.returncode == 1
    assert "tests.support.models.Doubler" in refused.stderr
    assert "--trust tests.support.models.Doubler" in refused.stderr
    assert not (out / "card.json").exists()

    accepted = run_package(
        str(model), "--reference", str(reference), "--out", str(out),
        "--trust", "tests.support.models.Doubler",
    )  # fmt: skip
    assert accepted.returncode == 0, accepted.stderr
    card = json.loads((out / "card.json").read_text())
    assert card["trusted_types"] == ["tests.support.models.Doubler"]

    service = start_service(out, tmp_path / "service.log", env=PYTHONPATH)
    try:
        response = service.client.post("/v1/predict", json={"samples": [{"x": 15.0}, {"x": 2.0}]})
        assert [p["label"] for p in response.json()["predictions"]] == ["high", "low"]
    finally:
        service.stop()


def test_serving_trusts_only_the_types_the_card_lists(tmp_path: Path) -> None:
    out, packaged = package_trusted_doubler(tmp_path)
    assert packaged.returncode == 0, packaged.stderr
    write_card(out, read_card(out).model_copy(update={"trusted_types": []}))
    output = refused_start(out, tmp_path / "refused.log", PYTHONPATH)
    assert "cannot load estimator" in output
    assert "tests.support.models.Doubler" in output


# --- where the estimator is, and which bundle it is ---------------------------------------------


def test_a_card_whose_estimator_file_leaves_the_bundle_is_refused(
    iris_bundle: Path, tmp_path: Path
) -> None:
    bundle = copy_bundle(iris_bundle, tmp_path / "bundle")
    card = read_card(bundle)
    # The file it names exists and matches the card: only its place is wrong.
    (tmp_path / "x").write_bytes((bundle / card.estimator_file).read_bytes())
    write_card(bundle, card.model_copy(update={"estimator_file": "../x"}))
    output = refused_start(bundle, tmp_path / "refused.log")
    assert "'../x' resolves outside the bundle directory" in output


def test_a_wrong_bundle_sha256_stops_start_up_and_the_right_one_serves(
    iris_bundle: Path, tmp_path: Path
) -> None:
    right = hashlib.sha256((iris_bundle / "card.json").read_bytes()).hexdigest()
    wrong = hashlib.sha256(b"another bundle").hexdigest()
    output = refused_start(
        iris_bundle, tmp_path / "refused.log", {"LUCIDSERVE_BUNDLE_SHA256": wrong}
    )
    assert f"LUCIDSERVE_BUNDLE_SHA256 expects {wrong}" in output
    env = {"LUCIDSERVE_BUNDLE_SHA256": f"sha256:{right.upper()}"}
    service = start_service(iris_bundle, tmp_path / "service.log", env=env)
    try:
        assert predicts(service, IRIS_SAMPLE)
    finally:
        service.stop()


def test_package_prints_the_bundle_sha256(tmp_path: Path) -> None:
    out, done = package_trusted_doubler(tmp_path)
    digest = hashlib.sha256((out / "card.json").read_bytes()).hexdigest()
    assert f"LUCIDSERVE_BUNDLE_SHA256={digest}" in done.stdout.splitlines()


# --- nothing from the training data in the documentation ----------------------------------------


def test_a_text_models_openapi_document_holds_no_reference_row(tmp_path: Path) -> None:
    bundle = package_text_model(tmp_path)
    service = start_service(bundle, tmp_path / "service.log")
    try:
        documents = [service.client.get(path).text for path in ("/openapi.json", "/v1/model")]
        example = service.client.get("/v1/model").json()["features"][0]["example"]
        assert predicts(service, {"text": example})
    finally:
        service.stop()
    rows = [text for texts in NEWSGROUPS.values() for text in texts]
    for document in documents:
        leaked = [row for row in rows if row in document or row[:30] in document]
        assert leaked == []
    assert example.startswith("lorem ipsum")
    typical = sorted(len(row) for row in rows)[len(rows) // 2]
    assert abs(len(example) - typical) <= 2


def test_the_packager_can_give_the_example(tmp_path: Path) -> None:
    example = {"text": "a slapshot from the blue line"}
    bundle = package_text_model(tmp_path, "--example", json.dumps(example))
    card = read_card(bundle)
    assert card.features[0].example == example["text"]
    schemas = build_schemas(card, max_batch_rows=10, max_text_length=1000)
    assert schemas.example == {"samples": [example]}


def test_an_example_for_an_unknown_feature_is_refused(tmp_path: Path) -> None:
    model, reference = save_custom_skops_model(tmp_path)
    done = run_package(
        str(model), "--reference", str(reference), "--out", str(tmp_path / "bundle"),
        "--trust", "tests.support.models.Doubler", "--example", '{"y": 1}',
    )  # fmt: skip
    assert done.returncode == 1
    assert "unknown features ['y']" in done.stderr


# --- the multiprocess directory -----------------------------------------------------------------


def test_a_foreign_non_empty_multiprocess_directory_is_left_untouched(
    iris_bundle: Path, tmp_path: Path
) -> None:
    foreign = tmp_path / "data"
    (foreign / "nested").mkdir(parents=True)
    (foreign / "precious.csv").write_text("a,b\n1,2\n")
    (foreign / "nested" / "more.db").write_bytes(b"\x00" * 16)
    before = sorted((p.relative_to(foreign), p.read_bytes()) for p in foreign.rglob("*.*"))
    env = {"LUCIDSERVE_MULTIPROC_DIR": str(foreign)}
    output = refused_start(iris_bundle, tmp_path / "refused.log", env, workers=2)
    assert "is not empty and was not made by lucidserve" in output
    after = sorted((p.relative_to(foreign), p.read_bytes()) for p in foreign.rglob("*.*"))
    assert after == before
    assert not (foreign / MARKER).exists()


def test_lucidserves_own_multiprocess_directory_is_wiped_at_start(
    iris_bundle: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / MARKER).write_text("")
    (directory / "counter_999999.db").write_bytes(b"stale counts from a previous run")
    env = {"LUCIDSERVE_MULTIPROC_DIR": str(directory)}
    service = start_service(iris_bundle, tmp_path / "service.log", env=env, workers=2)
    try:
        assert not (directory / "counter_999999.db").exists()
        assert (directory / MARKER).is_file()
        assert predicts(service, IRIS_SAMPLE)
    finally:
        service.stop()


# --- API keys from a file: rotation without a restart -------------------------------------------


def test_a_rotated_key_file_takes_effect_without_a_restart(
    iris_bundle: Path, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    keys.write_text("old-key\n")
    env = {"LUCIDSERVE_API_KEYS_FILE": str(keys)}
    service = start_service(iris_bundle, tmp_path / "service.log", env=env)
    body = {"samples": [IRIS_SAMPLE]}

    def status(key: str) -> int:
        return service.client.post("/v1/predict", json=body, headers={"X-API-Key": key}).status_code

    try:
        assert (status("old-key"), status("new-key")) == (200, 401)
        # As a mounted Secret rotates: the new content appears at once, under a new inode.
        staged = tmp_path / "keys.new"
        staged.write_text("new-key\n")
        os.replace(staged, keys)
        wait_until(lambda: status("new-key") == 200, timeout=15, what="the rotated key")
        assert status("old-key") == 401
        assert service.proc.poll() is None
        assert service.output().count('"event":"model_ready"') == 1, "no restart"
    finally:
        service.stop()
