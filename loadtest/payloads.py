"""Request payloads that follow a model's reference data, built from its model card alone.

Every feature gets a sampler. With the card's drift reference, a draw picks a reference bin by its
proportion and then a value inside it, so generated traffic reproduces the reference histogram that
the service's drift statistics compare against. A card without a reference falls back to the
feature's observed range, its categories or its maximum text length. One seeded `random.Random`
drives every draw, so a run repeats exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from random import Random
from typing import Any, Protocol, TypeVar

Value = float | str
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

    def draw(self, rng: Random) -> float:
        interval = _pick(rng, self.intervals, [i.weight for i in self.intervals])
        if self.integer:
            # Whole numbers in [low, high): the reference bins lengths with side="right".
            first, last = math.ceil(interval.low), math.ceil(interval.high) - 1
            return float(rng.randint(first, last) if last >= first else first)
        # Half-open [low, high), like the bin: random() never returns 1.
        return interval.low + (interval.high - interval.low) * rng.random()

    def drifted(self, shift: float) -> NumericSampler:
        offset = shift * self.span
        moved = tuple(replace(i, low=i.low + offset, high=i.high + offset) for i in self.intervals)
        return replace(self, intervals=moved)


@dataclass(frozen=True)
class CategorySampler:
    """A category, drawn by its reference share."""

    name: str
    categories: tuple[str, ...]
    weights: tuple[float, ...]

    def draw(self, rng: Random) -> str:
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
class PayloadModel:
    """What the load scenarios need to know about the served model, and its sample generator."""

    name: str
    version: str
    classes: tuple[str, ...]
    samplers: tuple[FeatureSampler, ...]
    drifted_feature: str | None = None
    source: str = "the drift reference"

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
        return cls(
            name=str(card["name"]),
            version=str(card["version"]),
            classes=tuple(str(c) for c in card.get("classes") or ()),
            samplers=samplers,
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
    name = str(feature["name"])
    kind = feature["type"]
    if kind == "number":
        if reference is not None:
            return _numeric_from_reference(name, reference, integer=False)
        span = feature.get("range")
        if not isinstance(span, Mapping):
            raise ValueError(f"numeric feature {name!r} has neither a drift reference nor a range")
        low, high = float(span["min"]), float(span["max"])
        return NumericSampler(name, (Interval(low, high, 1.0),), span=high - low)
    if kind == "category":
        return _category_sampler(name, feature, reference)
    if kind == "text":
        max_length = int(feature.get("max_length") or DEFAULT_MAX_TEXT_LENGTH)
        if reference is not None:
            lengths = _numeric_from_reference(name, reference, integer=True)
        else:
            high = float(min(max_length, FALLBACK_TEXT_LENGTH))
            lengths = NumericSampler(name, (Interval(1.0, high, 1.0),), span=high - 1, integer=True)
        return TextSampler(name, lengths, max_length)
    raise ValueError(f"feature {name!r} has unknown type {kind!r}")


def _numeric_from_reference(
    name: str, reference: Mapping[str, Any], *, integer: bool
) -> NumericSampler:
    """Intervals for the reference bins.

    The reference's `edges` run from the observed minimum to just past the observed maximum, and
    its bins are [underflow, one per gap between edges, overflow, missing] (values binned with
    searchsorted(edges, value, side="right")). The open underflow and overflow bins get a width of
    OPEN_BIN_FRACTION of the observed range; the missing bin cannot be sent, as every sample
    carries every feature.
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


def _pick(rng: Random, items: Sequence[T], weights: Sequence[float]) -> T:
    return rng.choices(items, weights=weights, k=1)[0]
