"""Locust users: the populations of traffic a lucidserve release is checked against.

Weights set the mix when no class is named on the command line; name classes to run only those.
`DriftedPopulationUser` joins only when --drift-feature is given or it is named. Every response is
validated, and every request counts once in Locust's statistics, the model-card fetch included, so
Locust's request total equals the service's own count of the same traffic.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from random import Random
from typing import Any

from gevent.lock import Semaphore  # type: ignore[import-untyped]
from locust import FastHttpUser, task
from locust.exception import StopUser

from loadtest.invalid_requests import InvalidRequest, invalid_requests
from loadtest.options import ScenarioOptions
from loadtest.payloads import PayloadModel, Sample, draw_batch_size
from loadtest.validation import (
    check_error,
    check_label_probabilities,
    check_predictions,
    parse_json,
)

CARD_PATH = "/v1/model"
logger = logging.getLogger("loadtest")


class ServedModel:
    """The served model's card, read once per Locust process by the first user that needs it."""

    def __init__(self) -> None:
        self._lock = Semaphore()
        self._model: PayloadModel | None = None

    def get(self, user: ModelUser) -> PayloadModel | None:
        """The model; None (with a failure recorded) when the card cannot be read."""
        with self._lock:
            if self._model is None:
                self._model = _read_card(user)
            return self._model


SERVED_MODEL = ServedModel()
_USER_NUMBERS: dict[str, Iterator[int]] = {}


class ModelUser(FastHttpUser):
    """Shared set-up: the model, a seeded random source, think time and validated requests."""

    abstract = True

    def on_start(self) -> None:
        self.options = ScenarioOptions.from_parsed(self.environment.parsed_options)
        model = SERVED_MODEL.get(self)
        if model is None:
            raise StopUser
        self.model = model
        # Seeded per user (and per worker when distributed): the same run sends the same payloads.
        name = type(self).__name__
        number = next(_USER_NUMBERS.setdefault(name, itertools.count()))
        worker = getattr(self.environment.runner, "worker_index", 0)
        self.rng = Random(f"{self.options.seed}/{worker}/{name}/{number}")

    def wait_time(self) -> float:
        return self.rng.uniform(self.options.wait_min, self.options.wait_max)

    def batch_size(self) -> int:
        return draw_batch_size(
            self.rng, self.options.batch_median_rows, self.options.batch_max_rows
        )

    def predict(self, samples: list[Sample], name: str) -> None:
        """POST /v1/predict and check every prediction in the answer."""
        with self.client.post(
            "/v1/predict", json={"samples": samples}, name=name, catch_response=True
        ) as response:
            body, problem = parse_json(response.text)
            problem = problem or check_predictions(
                response.status_code, body, self.model, len(samples)
            )
            _report(response, problem)


class SinglePredictionUser(ModelUser):
    """One sample per request: an interactive client."""

    weight = 10

    @task
    def predict_one(self) -> None:
        self.predict(self.model.samples(self.rng, 1), "/v1/predict [1 row]")


class BatchPredictionUser(ModelUser):
    """Batches with log-normal sizes: mostly a handful of rows, sometimes close to the maximum."""

    weight = 4

    @task
    def predict_batch(self) -> None:
        self.predict(self.model.samples(self.rng, self.batch_size()), "/v1/predict [batch]")


class LabelProbabilityUser(ModelUser):
    """The probability of one class for a few samples, via POST /v1/predict/{label}.

    A model without that route (a regressor, a classifier without probabilities) gets the same
    few samples on /v1/predict instead.
    """

    weight = 3

    @task
    def label_probability(self) -> None:
        if not self.model.has_label_route:
            samples = self.model.samples(self.rng, self.rng.randint(1, 4))
            self.predict(samples, "/v1/predict [few rows]")
            return
        label = self.rng.choice(self.model.classes)
        samples = self.model.samples(self.rng, self.rng.randint(1, 4))
        with self.client.post(
            f"/v1/predict/{label}",
            json={"samples": samples},
            name="/v1/predict/{label}",
            catch_response=True,
        ) as response:
            body, problem = parse_json(response.text)
            problem = problem or check_label_probabilities(
                response.status_code, body, self.model, label, len(samples)
            )
            _report(response, problem)


class InvalidRequestUser(ModelUser):
    """A small share of broken requests: the expected 4xx JSON error is a success."""

    weight = 1

    @task
    def send_invalid(self) -> None:
        cases = invalid_requests(
            self.model.sample(self.rng), label_route=self.model.has_label_route
        )
        case: InvalidRequest = self.rng.choice(cases)
        with self.client.post(
            case.path,
            data=case.body,
            headers={"Content-Type": case.content_type, "Accept": "application/json"},
            name=case.stats_name,
            catch_response=True,
        ) as response:
            body, problem = parse_json(response.text)
            problem = problem or check_error(response.status_code, body, case.expected)
            _report(response, problem)


class DriftedPopulationUser(ModelUser):
    """Batches from a population whose --drift-feature moved by --drift-shift (off by default).

    Run it long enough and the service's drift statistic for that feature crosses the alert
    threshold while the other features stay put: an end-to-end check of the drift alerts.
    """

    weight = 3

    def on_start(self) -> None:
        super().on_start()
        feature = self.options.drift_feature or self.model.feature_names[0]
        self.model = self.model.drifted(feature, self.options.drift_shift)

    @task
    def predict_drifted(self) -> None:
        self.predict(self.model.samples(self.rng, self.batch_size()), "/v1/predict [drifted]")


def select_populations(environment: Any, **_kwargs: Any) -> None:
    """`events.init` listener: keep the drifted population out unless asked for.

    It is asked for by naming a feature (--drift-feature) or the class on the command line.
    """
    parsed = environment.parsed_options
    options = ScenarioOptions.from_parsed(parsed)
    named = getattr(parsed, "user_classes", None)
    if options.drift_feature or named:
        return
    environment.user_classes = [
        cls for cls in environment.user_classes if cls is not DriftedPopulationUser
    ]


def _read_card(user: ModelUser) -> PayloadModel | None:
    options = ScenarioOptions.from_parsed(user.environment.parsed_options)
    if options.card_file:
        return _model_from(json.loads(Path(options.card_file).read_text()))
    with user.client.get(CARD_PATH, name=CARD_PATH, catch_response=True) as response:
        body, problem = parse_json(response.text)
        if not problem and response.status_code != 200:
            problem = f"status {response.status_code}"
        model = None
        if not problem:
            try:
                model = _model_from(body)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                problem = f"unusable model card: {exc!r}"
        _report(response, problem)
        return model


def _model_from(card: dict[str, Any]) -> PayloadModel:
    model = PayloadModel.from_card(card)
    logger.info("model %s %s; payloads follow %s", model.name, model.version, model.source)
    if model.source != "the drift reference":
        logger.warning(
            "the model card has no drift reference: the traffic will not match the reference "
            "data, and the service's drift statistics will report drift"
        )
    return model


def _report(response: Any, problem: str | None) -> None:
    if problem:
        response.failure(problem)
    else:
        response.success()
