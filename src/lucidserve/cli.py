"""The `lucidserve` command: serve, train, package."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lucidserve import __version__

logger = logging.getLogger("lucidserve")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of `python -m lucidserve`."""
    args = _parser().parse_args(argv)
    return int(args.run(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lucidserve", description=__doc__)
    parser.add_argument("--version", action="version", version=f"lucidserve {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve a model bundle over HTTP")
    serve.add_argument("--host", help="interface to bind (default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default: CPU limit)")
    serve.add_argument("--model-dir", type=Path, help="bundle directory (default models/default)")
    serve.add_argument("--reload", action="store_true", help="single-process dev server")
    serve.set_defaults(run=_serve)

    train = commands.add_parser("train", help="train a default model on bundled data")
    train.add_argument("--dataset", choices=["iris", "wine", "breast_cancer"], default="iris")
    train.add_argument("--out", type=Path, default=Path("models/default"))
    train.set_defaults(run=_train)

    package = commands.add_parser("package", help="make a bundle from your own fitted model")
    package.add_argument("model", type=Path, help="fitted estimator (.skops, .joblib or .pkl)")
    package.add_argument("--reference", type=Path, required=True, help="CSV sample of inputs")
    package.add_argument("--target", help="column of the CSV holding the true label, if any")
    package.add_argument("--name", help="model name (default: the file's stem)")
    package.add_argument("--model-version", default="1.0.0", help="model version")
    package.add_argument(
        "--handles-unknown-categories",
        action="store_true",
        help="accept categories not seen in the reference data",
    )
    package.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="TYPE",
        help="trust TYPE (a module.Class name) in the estimator beyond skops' defaults; repeat "
        "for each. Without it, package lists the types the estimator needs and stops. Loading a "
        "type can run its code: before naming one, check where it comes from (scikit-learn, "
        "your own code, a library you vet), e.g. with skops.io.get_untrusted_types(file=...)",
    )
    package.add_argument(
        "--example",
        type=_json_object,
        metavar="JSON",
        help='the sample shown in the API docs, e.g. \'{"text": "an example you wrote"}\' '
        "(default: the reference's median number, most frequent category, placeholder text)",
    )
    package.add_argument(
        "--nullable",
        action="append",
        default=[],
        metavar="COLUMN",
        help="accept null for COLUMN even though the reference has no blank in it (a column "
        "with blanks takes null anyway); repeat for each",
    )
    package.add_argument(
        "--dtype",
        action="append",
        default=[],
        type=_dtype_override,
        metavar="COLUMN=DTYPE",
        help="the pandas dtype COLUMN had when a DataFrame model was fitted, where the CSV does "
        "not show it, e.g. plan=category or age=int32; repeat for each",
    )
    package.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    package.set_defaults(run=_package)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from lucidserve.server import prefork

    # This process becomes gunicorn's master: no thread pool may start in it (see prefork.py).
    prefork.keep_thread_pools_out()

    from pydantic import ValidationError

    from lucidserve.bundle.store import BundleError, load_bundle_logged
    from lucidserve.observability.logging import configure_logging
    from lucidserve.settings import Settings

    overrides = {
        key: value
        for key, value in {
            "host": args.host,
            "port": args.port,
            "workers": args.workers,
            "model_dir": args.model_dir,
        }.items()
        if value is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"lucidserve: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    pipeline = configure_logging(settings.log_level, asynchronous=False)
    default_dir = Settings.model_fields["model_dir"].default
    if settings.model_dir == default_dir and not settings.model_dir.exists():
        # Only the default location is trained on demand; a configured bundle must exist.
        logger.info(
            "no model bundle found: training the default iris model first",
            extra={"event": "train_default", "model_dir": str(settings.model_dir)},
        )
        from lucidserve.bundle.train import train

        train("iris", settings.model_dir)
    try:
        # Loaded and checked once, before binding a port (fail with one clear message);
        # every worker is forked holding it.
        bundle = load_bundle_logged(settings.model_dir, settings.trust_policy())
    except BundleError as exc:
        logger.error("cannot serve: %s", exc, extra={"event": "bundle_invalid"})
        pipeline.close()
        return 1
    if args.reload:
        del bundle  # the reloader's child process loads its own
        return _serve_reload(settings)
    from lucidserve.server.gunicorn_app import run
    from lucidserve.server.multiprocess import ForeignDirectoryError

    try:
        code = run(settings, bundle)
    except ForeignDirectoryError as exc:
        logger.error("cannot serve: %s", exc, extra={"event": "multiproc_dir_refused"})
        pipeline.close()
        return 1
    pipeline.close()
    return code


def _serve_reload(settings: object) -> int:
    import uvicorn

    from lucidserve.settings import Settings

    assert isinstance(settings, Settings)
    # The reloader imports the app in a child process, which reads its settings from here.
    os.environ["LUCIDSERVE_MODEL_DIR"] = str(settings.model_dir)
    uvicorn.run(
        "lucidserve.server.dev:create_dev_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        reload=True,
        reload_dirs=[str(Path(__file__).parent)],
        log_config=None,
        access_log=False,
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from lucidserve.bundle.store import bundle_digest
    from lucidserve.bundle.train import train

    card = train(args.dataset, args.out)
    print(f"trained {card.name} {card.version} into {args.out}: {card.metrics}")
    print(f"LUCIDSERVE_BUNDLE_SHA256={bundle_digest(args.out)}")
    return 0


def _package(args: argparse.Namespace) -> int:
    from lucidserve.bundle.package import package
    from lucidserve.bundle.store import BundleError, bundle_digest

    try:
        card = package(
            args.model,
            args.reference,
            args.out,
            target=args.target,
            name=args.name,
            version=args.model_version,
            handles_unknown_categories=args.handles_unknown_categories,
            trusted=args.trust,
            examples=args.example,
            nullable=args.nullable,
            dtypes=dict(args.dtype),
        )
    except (BundleError, OSError, ValueError) as exc:
        print(f"lucidserve package: {exc}", file=sys.stderr)
        return 1
    print(f"packaged {card.name} {card.version} into {args.out} ({card.task})")
    if card.trusted_types:
        print(f"trusted types (recorded in the card): {', '.join(card.trusted_types)}")
    print(f"LUCIDSERVE_BUNDLE_SHA256={bundle_digest(args.out)}")
    return 0


def _dtype_override(text: str) -> tuple[str, str]:
    column, equals, dtype = text.partition("=")
    if not equals or not column or not dtype:
        raise argparse.ArgumentTypeError(f"expected COLUMN=DTYPE, got {text!r}")
    return column, dtype


def _json_object(text: str) -> dict[str, object]:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object of feature names to values")
    return value
