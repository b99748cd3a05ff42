"""Reading and writing model bundles: the estimator file plus card.json, bound by a SHA-256.

Bundles we write ourselves use skops, which rebuilds objects from an allow-list instead of running
pickle's arbitrary code. A team's joblib or pickle file is accepted by `lucidserve package` and
loaded with pickle semantics: only serve such files from a source you trust (see README).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from lucidserve.bundle.card import CARD_FILE, ModelCard

SKOPS_FILE = "model.skops"

logger = logging.getLogger("lucidserve")


class BundleError(Exception):
    """A bundle that cannot be served: missing, unreadable, or not matching its card."""


@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle."""

    path: Path
    card: ModelCard
    estimator: Any


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bundle(out: Path, estimator: Any, card_fields: dict[str, Any]) -> ModelCard:
    """Save `estimator` with skops into `out` and write card.json around it."""
    import skops.io as sio

    out.mkdir(parents=True, exist_ok=True)
    model_path = out / SKOPS_FILE
    sio.dump(estimator, model_path)
    card = ModelCard(
        **card_fields,
        estimator_file=SKOPS_FILE,
        estimator_format="skops",
        estimator_sha256=sha256_file(model_path),
        trusted_types=sorted(sio.get_untrusted_types(file=model_path)),
    )
    write_card(out, card)
    return card


def write_card(out: Path, card: ModelCard) -> None:
    """Write card.json (pretty, stable key order) next to the estimator."""
    text = orjson.dumps(card.model_dump(mode="json"), option=orjson.OPT_INDENT_2)
    (out / CARD_FILE).write_bytes(text + b"\n")


def read_card(path: Path) -> ModelCard:
    """Parse and validate a bundle's card.json."""
    card_path = path / CARD_FILE
    if not card_path.is_file():
        raise BundleError(f"no model bundle at {path}: {CARD_FILE} is missing")
    try:
        return ModelCard.model_validate_json(card_path.read_bytes())
    except ValidationError as exc:
        raise BundleError(f"{card_path} is not a valid model card: {exc}") from exc


def load_bundle(path: Path) -> Bundle:
    """Load a bundle, checking the estimator's SHA-256 against the card before deserializing it."""
    card = read_card(path)
    model_path = path / card.estimator_file
    if not model_path.is_file():
        raise BundleError(f"model bundle at {path} has no estimator file {card.estimator_file}")
    actual = sha256_file(model_path)
    if actual != card.estimator_sha256:
        raise BundleError(
            f"estimator {model_path} does not match its card: SHA-256 {actual}, "
            f"card says {card.estimator_sha256} (corrupt or tampered bundle)"
        )
    try:
        estimator = _deserialize(model_path, card)
    except Exception as exc:
        raise BundleError(f"cannot load estimator {model_path}: {exc}") from exc
    return Bundle(path=path, card=card, estimator=estimator)


def load_bundle_logged(path: Path) -> Bundle:
    """`load_bundle`, then a `bundle_loaded` log event saying which process loaded it, and how long
    it took: under gunicorn only the master loads a bundle, and the event shows it."""
    started = time.perf_counter()
    bundle = load_bundle(path)
    logger.info(
        "model bundle loaded",
        extra={
            "event": "bundle_loaded",
            "pid": os.getpid(),
            "model_name": bundle.card.name,
            "model_version": bundle.card.version,
            "estimator_bytes": (path / bundle.card.estimator_file).stat().st_size,
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
    return bundle


def _deserialize(model_path: Path, card: ModelCard) -> Any:
    if card.estimator_format == "skops":
        import skops.io as sio

        return sio.load(model_path, trusted=card.trusted_types)
    if card.estimator_format == "joblib":
        import joblib

        return joblib.load(model_path)
    with model_path.open("rb") as handle:
        return pickle.load(handle)  # noqa: S301 - accepted for packaged bundles, see module doc
