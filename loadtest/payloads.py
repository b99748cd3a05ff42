"""Request payloads that follow a model's reference data, built from its model card alone.

Every feature gets a sampler. With the card's drift reference, a draw picks a reference bin by its
proportion and then a value inside it, so generated traffic reproduces the reference histogram that
the service's drift statistics compare against. A card without a reference falls back to the
feature's observed range, its categories or its maximum text length. Values have the JSON type the
feature's schema asks for: integers for a number of an integer dtype, true/false for a boolean, and
`null` for a nullable feature as often as the reference was missing (its missing bin's share). One
seeded `random.Random` drives every draw, so a run repeats exactly.

The card is read as plain JSON (this module runs in Locust's own image, without lucidserve).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from random import Random
from typing import Any, Protocol, TypeVar

Value = float | int | bool | str | None
T = TypeVar("T")
Sample = dict[str, Value]

# A short, neutral vocabulary for text features: the length of the text is what the reference
# describes, so the words only need to look like ordinary prose.
WORDS = (
    "the", "service", "answered", "quickly", "and", "model", "looked", "at", "every", "field",
    "before", "it", "chose", "a", "label", "customers", "wrote", "about", "delivery", "price",
    "quality", "support", "their", "account", "while", "team", "read", "each", "message", "to",
    "find", "pattern", "in", "new", "orders", "late", "parcels", "refunds", "questions", "praise",
    "complaints", "from", "last", "week", "or", "this", "morning",
)  # fmt: skip

# Width of the open underflow and overflow bins, as a fraction of the observed range.
OPEN_BIN_FRACTION = 0.05
OTHER_BIN = "__other__"
MISSING_CATEGORY_BIN = "__missing__"
# A boolean's reference bins are named by str() of the value.
BOOLEAN_CATEGORIES = {"False": False, "True": True}
DEFAULT_MAX_TEXT_LENGTH = 10_000
FALLBACK_TEXT_LENGTH = 200  # longest text generated for a card without a drift reference


class FeatureSampler(Protocol):
    """Draws values of one feature."""

    @property
    def name(self) -> str:
        """The feature's name in a sample."""
        ...

    def draw(self, rng: Random) -> Value:
        """One value of the feature."""
        ...

    def drifted(self, shift: float) -> FeatureSampler:
        """The same feature with its distribution moved by `shift` (see `PayloadModel.drifted`)."""
        ...


@dataclass(frozen=True)
class Interval:
    """A half-open interval [low, high), like a reference bin, and its share of the values."""

    low: float
    high: float
    weight: float


@dataclass(frozen=True)
class NumericSampler:
    """A number: a weighted interval, then a uniform draw inside it."""

    name: str
    intervals: tuple[Interval, ...]
    span: float
    integer: bool = False

    def draw(self, rng: Random) -> float | int:
        interval = _pick(rng, self.intervals, [i.weight for i in self.intervals])
        if self.integer:
            # Whole numbers in [low, high): the reference bins values with side="right".
            first, last = math.ceil(interval.low), math.ceil(interval.high) - 1
            return rng.randint(first, last) if last >= first else first
        # Half-open [low, high), like the bin: random() never returns 1.
        return interval.low + (interval.high - interval.low) * rng.random()

    def drifted(self, shift: float) -> NumericSampler:
        offset = shift * self.span
        moved = tuple(replace(i, low=i.low + offset, high=i.high + offset) for i in self.intervals)
        return replace(self, intervals=moved)


@dataclass(frozen=True)
class CategorySampler:
    """A category (or a boolean's true/false), drawn by its reference share."""

    name: str
    categories: tuple[str | bool, ...]
    weights: tuple[float, ...]

    def draw(self, rng: Random) -> str | bool:
        return _pick(rng, self.categories, self.weights)

    def drifted(self, shift: float) -> CategorySampler:
        # Move a `shift` share of the mass onto the rarest category.
        share = min(max(shift, 0.0), 1.0)
        total = sum(self.weights)
        rarest = min(range(len(self.weights)), key=self.weights.__getitem__)
        weights = tuple(
            (1 - share) * w / total + (share if i == rarest else 0.0)
            for i, w in enumerate(self.weights)
        )
        return replace(self, weights=weights)


@dataclass(frozen=True)
class TextSampler:
    """Text: a length drawn like a number, then prose of exactly that many characters."""

    name: str
    lengths: NumericSampler
    max_length: int

    def draw(self, rng: Random) -> str:
        length = min(max(1, round(self.lengths.draw(rng))), self.max_length)
        return prose(rng, length)

    def drifted(self, shift: float) -> TextSampler:
        return replace(self, lengths=self.lengths.drifted(shift))


@dataclass(frozen=True)
class NullableSampler:
    """A nullable feature: `null` (None) at the reference's missing rate, else a present value."""

    present: FeatureSampler
    missing_rate: float

    @property
    def name(self) -> str:
        return self.present.name

    def draw(self, rng: Random) -> Value:
        # One draw decides presence first, so the present values keep their own distribution.
        return None if rng.random() < self.missing_rate else self.present.draw(rng)

    def drifted(self, shift: float) -> NullableSampler:
        return replace(self, present=self.present.drifted(shift))


@dataclass(frozen=True)
class PayloadModel:
    """What the load scenarios need to know about the served model, and its sample generator."""

    name: str
    version: str
    classes: tuple[str, ...]
    samplers: tuple[FeatureSampler, ...]
    drifted_feature: str | None = None
    source: str = "the drift reference"
    task: str = "classification"
    probabilities: bool = True  # a classifier without predict_proba answers labels only

    @classmethod
    def from_card(
        cls, card: Mapping[str, Any], reference: Mapping[str, Any] | None = None
    ) -> PayloadModel:
        """Build from a model card (GET /v1/model or card.json).

        `reference` is the drift reference's per-feature section; by default the card's own
        `drift.features`. Features without one are generated from their spec.
        """
        if reference is None:
            reference = (card.get("drift") or {}).get("features") or {}
        samplers = tuple(
            _sampler(feature, reference.get(feature["name"])) for feature in card["features"]
        )
        covered = sum(feature["name"] in reference for feature in card["features"])
        classes = tuple(str(c) for c in card.get("classes") or ())
        return cls(
            name=str(card["name"]),
            version=str(card["version"]),
            classes=classes,
            samplers=samplers,
            task=str(card.get("task") or ("classification" if classes else "regression")),
            probabilities=bool(classes) and card.get("probabilities", True) is not False,
            source=(
                "the drift reference"
                if covered == len(samplers)
                else "the drift reference and the features' ranges"
                if covered
                else "the features' ranges, categories and lengths"
            ),
        )

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.samplers)

    @property
    def is_regressor(self) -> bool:
        """A regressor answers {"value": ...} per sample."""
        return self.task == "regression"

    @property
    def has_label_route(self) -> bool:
        """POST /v1/predict/{label} exists: a classifier with probabilities (else it is a 404)."""
        return not self.is_regressor and self.probabilities

    def sample(self, rng: Random) -> Sample:
        """One sample: every feature drawn independently from its reference distribution."""
        return {s.name: s.draw(rng) for s in self.samplers}

    def samples(self, rng: Random, count: int) -> list[Sample]:
        return [self.sample(rng) for _ in range(count)]

    def drifted(self, feature: str, shift: float) -> PayloadModel:
        """The same model with one feature's distribution moved.

        Numbers (and text lengths) move by `shift` times the feature's observed range; a category
        moves a `shift` share of its mass onto its rarest category.
        """
        if feature not in self.feature_names:
            raise ValueError(f"unknown feature {feature!r}; the model has {self.feature_names}")
        samplers = tuple(s.drifted(shift) if s.name == feature else s for s in self.samplers)
        return replace(self, samplers=samplers, drifted_feature=feature)


def draw_batch_size(rng: Random, median: int, maximum: int) -> int:
    """A log-normal batch size: mostly small batches, a long tail of big ones."""
    size = round(rng.lognormvariate(math.log(max(median, 1)), 0.8))
    return min(max(size, 2), max(maximum, 2))


def prose(rng: Random, length: int) -> str:
    """Words from the built-in vocabulary, cut to exactly `length` characters."""
    words: list[str] = []
    used = 0
    while used < length:
        word = rng.choice(WORDS)
        words.append(word)
        used += len(word) + 1
    text = " ".join(words)[:length]
    # Keep exactly `length` characters without trailing whitespace a server might strip.
    return text[:-1] + "s" if text.endswith(" ") else text


def _sampler(feature: Mapping[str, Any], reference: Mapping[str, Any] | None) -> FeatureSampler:
    """The feature's sampler; a nullable one sends `null` at its reference's missing rate."""
    present = _present_sampler(feature, reference)
    if not feature.get("nullable"):
        return present
    rate = missing_rate(reference) if reference is not None else 0.0
    return NullableSampler(present, rate) if rate > 0 else present


def missing_rate(reference: Mapping[str, Any]) -> float:
    """The share of the reference data that was missing: its missing bin's proportion (the last
    bin of a numeric or text-length reference, `__missing__` of a categorical one)."""
    proportions = [float(p) for p in reference["proportions"]]
    if reference.get("kind") in {"categorical", "class"}:
        shares = dict(zip(reference["bins"], proportions, strict=True))
        return float(shares.get(MISSING_CATEGORY_BIN, 0.0))
    return proportions[-1]


def _present_sampler(
    feature: Mapping[str, Any], reference: Mapping[str, Any] | None
) -> FeatureSampler:
    name = str(feature["name"])
    kind = feature["type"]
    if kind == "number":
        integer = is_integer_dtype(feature.get("dtype"))
        if reference is not None:
            return _numeric_from_reference(name, reference, integer=integer)
        span = feature.get("range")
        if not isinstance(span, Mapping):
            raise ValueError(f"numeric feature {name!r} has neither a drift reference nor a range")
        low, high = float(span["min"]), float(span["max"])
        # An integer range is inclusive of its maximum: draw up to the next whole number.
        top = math.floor(high) + 1 if integer else high
        return NumericSampler(name, (Interval(low, top, 1.0),), span=high - low, integer=integer)
    if kind == "category":
        return _category_sampler(name, feature, reference)
    if kind == "boolean":
        return _boolean_sampler(name, reference)
    if kind == "text":
        max_length = int(feature.get("max_length") or DEFAULT_MAX_TEXT_LENGTH)
        if reference is not None:
            lengths = _numeric_from_reference(name, reference, integer=True)
        else:
            high = float(min(max_length, FALLBACK_TEXT_LENGTH))
            lengths = NumericSampler(name, (Interval(1.0, high, 1.0),), span=high - 1, integer=True)
        return TextSampler(name, lengths, max_length)
    raise ValueError(f"feature {name!r} has unknown type {kind!r}")


def is_integer_dtype(dtype: object) -> bool:
    """Whether a pandas dtype name is an integer one ("int64", "uint8", "Int32", ...): such a
    feature is sent as JSON integers."""
    return isinstance(dtype, str) and dtype.lower().lstrip("u").startswith("int")


def _numeric_from_reference(
    name: str, reference: Mapping[str, Any], *, integer: bool
) -> NumericSampler:
    """Intervals for the reference bins.

    The reference's `edges` run from the observed minimum to just past the observed maximum, and
    its bins are [underflow, one per gap between edges, overflow, missing] (values binned with
    searchsorted(edges, value, side="right")). The open underflow and overflow bins get a width of
    OPEN_BIN_FRACTION of the observed range; the missing bin is left out here (a nullable
    feature's sampler sends `null` at its share).
    """
    edges = [float(e) for e in reference["edges"]]
    proportions = [float(p) for p in reference["proportions"]]
    if len(edges) < 2 or len(proportions) != len(edges) + 2:
        raise ValueError(
            f"drift reference of {name!r}: {len(proportions)} proportions for {len(edges)} edges"
        )
    low, high = edges[0], edges[-1]
    width = OPEN_BIN_FRACTION * max(high - low, 1.0 if integer else 1e-9)
    intervals = [Interval(low - width, low, proportions[0])]
    intervals += [
        Interval(edges[i], edges[i + 1], proportions[1 + i]) for i in range(len(edges) - 1)
    ]
    intervals.append(Interval(high, high + width, proportions[len(edges)]))
    kept = tuple(i for i in intervals if i.weight > 0)
    if not kept:
        raise ValueError(f"drift reference of {name!r} has no weight on any value")
    return NumericSampler(name, kept, span=high - low, integer=integer)


def _category_sampler(
    name: str, feature: Mapping[str, Any], reference: Mapping[str, Any] | None
) -> CategorySampler:
    """Categories by reference share; the `__other__` share goes to the card's remaining ones."""
    categories = [str(c) for c in feature.get("categories") or ()]
    if reference is None:
        if not categories:
            raise ValueError(f"category feature {name!r} lists no categories")
        return CategorySampler(name, tuple(categories), tuple(1.0 for _ in categories))
    top = [str(c) for c in reference["categories"]]
    shares = dict(zip(reference["bins"], (float(p) for p in reference["proportions"]), strict=True))
    names, weights = list(top), [shares.get(c, 0.0) for c in top]
    rest = [c for c in categories if c not in set(top)]
    other = shares.get(OTHER_BIN, 0.0)
    if rest and other > 0:
        names += rest
        weights += [other / len(rest)] * len(rest)
    kept = [(n, w) for n, w in zip(names, weights, strict=True) if w > 0]
    if not kept:
        raise ValueError(f"drift reference of {name!r} has no weight on any category")
    return CategorySampler(name, tuple(n for n, _ in kept), tuple(w for _, w in kept))


def _boolean_sampler(name: str, reference: Mapping[str, Any] | None) -> CategorySampler:
    """true/false by reference share (bins "False" and "True"), or evenly without a reference."""
    if reference is None:
        return CategorySampler(name, (False, True), (1.0, 1.0))
    shares = dict(zip(reference["bins"], (float(p) for p in reference["proportions"]), strict=True))
    kept = [(value, shares.get(b, 0.0)) for b, value in BOOLEAN_CATEGORIES.items()]
    kept = [(value, weight) for value, weight in kept if weight > 0]
    if not kept:
        raise ValueError(f"drift reference of {name!r} has no weight on true or false")
    return CategorySampler(name, tuple(v for v, _ in kept), tuple(w for _, w in kept))


def _pick(rng: Random, items: Sequence[T], weights: Sequence[float]) -> T:
    return rng.choices(items, weights=weights, k=1)[0]
