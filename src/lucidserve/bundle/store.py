"""Reading and writing model bundles: the estimator file plus card.json, bound by a SHA-256.

What is trusted is the operator's decision, never the bundle's:

- skops files load with exactly the types the card lists, and `lucidserve package` writes a type
  into that list only when its user named it (`--trust TYPE`); skops rebuilds objects from that
  allow-list instead of running pickle's arbitrary code.
- A joblib or pickle estimator runs whatever code it holds when loaded: it is loaded only when the
  operator says so (`LUCIDSERVE_ALLOW_PICKLE=true`), whatever the card says.
- The card's `estimator_file` must resolve inside the bundle directory.
- The card's `estimator_sha256` catches a corrupt estimator file; it cannot catch tampering, since
  whoever changes the file can change the card beside it. An expected digest of card.json given
  from outside the bundle (`LUCIDSERVE_BUNDLE_SHA256`) does: the card pins the estimator's SHA-256,
  so a matching card pins the estimator too. `sha256sum card.json` computes it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from lucidserve.bundle.card import CARD_FILE, ModelCard

SKOPS_FILE = "model.skops"
PICKLE_FORMATS = frozenset({"joblib", "pickle"})

logger = logging.getLogger("lucidserve")


class BundleError(Exception):
    """A bundle that cannot be served: missing, unreadable, untrusted, or not matching its card."""


class UntrustedTypesError(BundleError):
    """A skops file needs types that its packager did not name."""

    def __init__(self, source: str, missing: Collection[str]) -> None:
        self.missing = sorted(missing)
        names = ", ".join(self.missing)
        flags = " ".join(f"--trust {name}" for name in self.missing)
        super().__init__(
            f"{source} needs types that skops does not trust by default: {names}. Loading a type "
            "can run its code, as pickle would. Review each one (is it scikit-learn's, your own, "
            "or from a library you vet?), then name it to trust it: " + flags
        )


@dataclass(frozen=True)
class TrustPolicy:
    """The operator's decisions about what a bundle may load (from Settings)."""

    allow_pickle: bool = False
    expected_card_sha256: str | None = None


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


def bundle_digest(path: Path) -> str:
    """The bundle's digest for LUCIDSERVE_BUNDLE_SHA256: the SHA-256 of its card.json."""
    return sha256_file(path / CARD_FILE)


def write_bundle(
    out: Path, estimator: Any, card_fields: dict[str, Any], *, trusted: Collection[str]
) -> ModelCard:
    """Save `estimator` with skops into `out` and write card.json around it.

    Refused (UntrustedTypesError, nothing written) when the saved file would need a type that is
    not in `trusted`; the card lists the types the file needs, every one of them from `trusted`.
    """
    import skops.io as sio

    data = sio.dumps(estimator)
    needed = set(sio.get_untrusted_types(data=data))
    if not needed <= set(trusted):
        raise UntrustedTypesError("the estimator, saved with skops,", needed - set(trusted))
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / SKOPS_FILE
    model_path.write_bytes(data)
    card = ModelCard(
        **card_fields,
        estimator_file=SKOPS_FILE,
        estimator_format="skops",
        estimator_sha256=sha256_file(model_path),
        trusted_types=sorted(needed),
    )
    write_card(out, card)
    return card


def write_card(out: Path, card: ModelCard) -> None:
    """Write card.json (pretty, stable key order) next to the estimator."""
    text = orjson.dumps(card.model_dump(mode="json"), option=orjson.OPT_INDENT_2)
    (out / CARD_FILE).write_bytes(text + b"\n")


def read_card(path: Path, *, expected_sha256: str | None = None) -> ModelCard:
    """Parse and validate a bundle's card.json, first checking its digest when one is expected."""
    card_path = path / CARD_FILE
    if not card_path.is_file():
        raise BundleError(f"no model bundle at {path}: {CARD_FILE} is missing")
    raw = card_path.read_bytes()
    if expected_sha256 is not None:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != expected_sha256:
            raise BundleError(
                f"{card_path} has SHA-256 {actual}, LUCIDSERVE_BUNDLE_SHA256 expects "
                f"{expected_sha256}: this is not the bundle the deployment names"
            )
    try:
        return ModelCard.model_validate_json(raw)
    except ValidationError as exc:
        raise BundleError(f"{card_path} is not a valid model card: {exc}") from exc


def load_bundle(path: Path, policy: TrustPolicy | None = None) -> Bundle:
    """Load a bundle under `policy` (default: skops only, no expected digest).

    Every check runs before the estimator is deserialized: the card's digest, where the estimator
    file is, its format, its SHA-256.
    """
    policy = policy or TrustPolicy()
    card = read_card(path, expected_sha256=policy.expected_card_sha256)
    model_path = estimator_path(path, card)
    if card.estimator_format in PICKLE_FORMATS and not policy.allow_pickle:
        raise BundleError(
            f"model bundle at {path} holds a {card.estimator_format} file ({card.estimator_file}): "
            "loading it runs whatever code it contains. Serve it only if you trust where it came "
            "from, with LUCIDSERVE_ALLOW_PICKLE=true, or package the model with skops"
        )
    if not model_path.is_file():
        raise BundleError(f"model bundle at {path} has no estimator file {card.estimator_file}")
    actual = sha256_file(model_path)
    if actual != card.estimator_sha256:
        raise BundleError(
            f"estimator {model_path} does not match its card: SHA-256 {actual}, "
            f"card says {card.estimator_sha256} (a corrupt bundle)"
        )
    try:
        estimator = _deserialize(model_path, card)
    except Exception as exc:
        raise BundleError(f"cannot load estimator {model_path}: {exc}") from exc
    return Bundle(path=path, card=card, estimator=estimator)


def estimator_path(path: Path, card: ModelCard) -> Path:
    """Where the card's estimator file is; refused unless it resolves inside the bundle."""
    root = path.resolve()
    candidate = (root / card.estimator_file).resolve()
    if candidate == root or not candidate.is_relative_to(root):
        raise BundleError(
            f"model bundle at {path}: estimator_file {card.estimator_file!r} resolves outside "
            "the bundle directory; a card may only name a file inside its own bundle"
        )
    return candidate


def load_bundle_logged(path: Path, policy: TrustPolicy | None = None) -> Bundle:
    """`load_bundle`, then a `bundle_loaded` log event saying which process loaded it, and how long
    it took: under gunicorn only the master loads a bundle, and the event shows it."""
    started = time.perf_counter()
    bundle = load_bundle(path, policy)
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
        return pickle.load(handle)  # noqa: S301 - only with LUCIDSERVE_ALLOW_PICKLE, see module doc
