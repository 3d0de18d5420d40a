"""``claims.toml``: which card makes which measurable claim, in terms of the results schema.

Each ``[[claim]]`` names a metric as ``table.column`` of a registered results table, the rows it
applies to (``where``), the claimed range with the reason for its tolerance, and the target the
claim is about: the device as the fingerprint identifies it (``devices``, ids of
:data:`orinprof.identity.MODULE_DEVICE_IDS`), power mode and clock state, batch, model kind,
sequence range, backends and baseline plan.  ``min_rounds`` (file-wide, or per claim) is how many
interleaved rounds of evidence a pass or fail needs.  Each ``[[not_measurable]]`` names a card
without a latency number and says why.  Every card of the deck must appear in one of the two.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orinprof import results
from orinprof.cards.deck import CardDeck
from orinprof.errors import OrinprofError
from orinprof.identity import MODULE_DEVICE_IDS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - JetPack 6 ships Python 3.10
    import tomli as tomllib

CLAIMS_SCHEMA = 1
#: rounds of evidence a supported/contradicted verdict needs unless claims.toml says otherwise
DEFAULT_MIN_ROUNDS = 5

Scalar = str | int | float | bool
MODEL_KINDS = ("encoder", "decoder")


@dataclass(frozen=True)
class Claim:
    id: str
    card: int
    text: str  # the card's wording the claim comes from
    metric: str  # "table.column"
    low: float
    high: float
    tolerance: str  # why [low, high] is the range the wording implies
    claimed: float | None = None
    where: Mapping[str, Scalar] = field(default_factory=dict)
    target: str = "any"  # human label of the device the claim is about
    devices: tuple[str, ...] = ()  # device ids the fingerprint must show; empty = any device
    device_kinds: tuple[str, ...] = ()  # `cpu`/`gpu`/`jetson` (the runner's kind); empty = any
    power_mode: str | None = None  # nvpmodel name the fingerprint must show (e.g. MAXN)
    clocks_locked: bool = False  # the fingerprint must show jetson_clocks on
    batch: int | None = None
    model_kind: str | None = None  # `encoder` / `decoder` (models.ModelSpec.kind)
    seq_range: tuple[int, int] | None = None  # inclusive sequence-length range
    backends: tuple[str, ...] = ()  # empty = any backend
    baseline: str | None = None  # the baseline plan the claim assumes
    min_rounds: int | None = None  # None: the file's min_rounds
    conditions: str = ""
    front_starts: str = ""

    @property
    def table(self) -> str:
        return self.metric.split(".", 1)[0]

    @property
    def column(self) -> str:
        return self.metric.split(".", 1)[1]

    def range_text(self) -> str:
        if math.isinf(self.high):
            return f"≥ {self.low:g}"
        if math.isinf(self.low):
            return f"≤ {self.high:g}"
        return f"{self.low:g}–{self.high:g}"


@dataclass(frozen=True)
class NotMeasurable:
    card: int
    reason: str
    front_starts: str = ""


@dataclass(frozen=True)
class Claims:
    claims: tuple[Claim, ...]
    not_measurable: tuple[NotMeasurable, ...] = ()
    source: str = "claims.toml"
    min_rounds: int = DEFAULT_MIN_ROUNDS

    def for_card(self, card: int) -> list[Claim]:
        return [c for c in self.claims if c.card == card]

    def rounds_needed(self, claim: Claim) -> int:
        return self.min_rounds if claim.min_rounds is None else claim.min_rounds

    def card_range(self, card: int, column: str, plan: str | None = None) -> tuple[float, float]:
        """The claimed ``(low, high)`` of ``card``'s claim on ``column`` (e.g. ``e2e_reduction``),
        for the claim selecting ``plan`` when several do: the one owner of the cards' ranges."""
        found = [
            c
            for c in self.for_card(card)
            if c.column == column and (plan is None or c.where.get("precision", plan) == plan)
        ]
        if not found:
            raise OrinprofError(
                f"{self.source} has no card {card} claim on {column}" + (f" for {plan}" if plan else ""),
                "add the [[claim]] to claims.toml",
            )
        return found[0].low, found[0].high

    def get(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(claim_id)


_CLAIM_KEYS = {f for f in Claim.__dataclass_fields__}
_REQUIRED = ("id", "card", "text", "metric", "low", "high", "tolerance")


def _field_error(source: str, where: str, what: str, hint: str | None = None) -> OrinprofError:
    return OrinprofError(f"{source}: {where}: {what}", hint or "fix claims.toml")


def parse_claims(data: Mapping[str, Any], source: str = "claims.toml", deck: CardDeck | None = None) -> Claims:
    """Build :class:`Claims` from parsed TOML; every problem names the claim and field."""
    from orinprof.cards import outliers, pruning  # noqa: F401  (register the experiment tables)

    version = data.get("schema_version", CLAIMS_SCHEMA)
    if version != CLAIMS_SCHEMA:
        raise _field_error(source, "schema_version", f"is {version!r}, this orinprof reads {CLAIMS_SCHEMA}")
    claims: list[Claim] = []
    for i, raw in enumerate(data.get("claim", []), start=1):
        label = f"claim #{i} ({raw.get('id', '?')})"
        if not isinstance(raw, Mapping):
            raise _field_error(source, label, "must be a table ([[claim]])")
        missing = [k for k in _REQUIRED if k not in raw]
        if missing:
            raise _field_error(source, label, f"missing field(s) {', '.join(missing)}")
        unknown = sorted(set(raw) - _CLAIM_KEYS)
        if unknown:
            raise _field_error(
                source,
                label,
                f"unknown field(s) {', '.join(unknown)}",
                "valid: " + ", ".join(sorted(_CLAIM_KEYS)),
            )
        claim = Claim(
            id=str(raw["id"]),
            card=_int(raw["card"], source, f"{label}.card"),
            text=str(raw["text"]),
            metric=str(raw["metric"]),
            low=_float(raw["low"], source, f"{label}.low"),
            high=_float(raw["high"], source, f"{label}.high"),
            tolerance=str(raw["tolerance"]),
            claimed=None if raw.get("claimed") is None else _float(raw["claimed"], source, f"{label}.claimed"),
            where=dict(raw.get("where", {})),
            target=str(raw.get("target", "any")),
            devices=tuple(str(d) for d in raw.get("devices", ())),
            device_kinds=tuple(str(d) for d in raw.get("device_kinds", ())),
            power_mode=None if raw.get("power_mode") is None else str(raw["power_mode"]),
            clocks_locked=bool(raw.get("clocks_locked", False)),
            batch=None if raw.get("batch") is None else _int(raw["batch"], source, f"{label}.batch"),
            model_kind=None if raw.get("model_kind") is None else str(raw["model_kind"]),
            seq_range=_seq_range(raw.get("seq_range"), source, f"{label}.seq_range"),
            backends=tuple(str(b) for b in raw.get("backends", ())),
            baseline=None if raw.get("baseline") is None else str(raw["baseline"]),
            min_rounds=(
                None if raw.get("min_rounds") is None else _int(raw["min_rounds"], source, f"{label}.min_rounds")
            ),
            conditions=str(raw.get("conditions", "")),
            front_starts=str(raw.get("front_starts", "")),
        )
        _check_claim(claim, source, label)
        if any(c.id == claim.id for c in claims):
            raise _field_error(source, f"{label}.id", f"duplicate claim id {claim.id!r}")
        claims.append(claim)
    skipped = [
        NotMeasurable(
            card=_int(raw.get("card"), source, f"not_measurable #{i}.card"),
            reason=str(raw.get("reason", "")),
            front_starts=str(raw.get("front_starts", "")),
        )
        for i, raw in enumerate(data.get("not_measurable", []), start=1)
    ]
    for i, s in enumerate(skipped, start=1):
        if not s.reason.strip():
            raise _field_error(
                source,
                f"not_measurable #{i} (card {s.card}).reason",
                "is empty",
                "say why the card has no measurable number",
            )
    min_rounds = _int(data.get("min_rounds", DEFAULT_MIN_ROUNDS), source, "min_rounds")
    result = Claims(tuple(claims), tuple(skipped), source, min_rounds)
    if deck is not None:
        check_against_deck(result, deck)
    return result


def _int(value: Any, source: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _field_error(source, where, f"must be an integer, not {value!r}")
    return value


def _seq_range(value: Any, source: str, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _field_error(source, where, f"must be [low, high], not {value!r}")
    low, high = (_int(v, source, where) for v in value)
    return low, high


def _float(value: Any, source: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _field_error(source, where, f"must be a number, not {value!r}")
    return float(value)


def _check_claim(claim: Claim, source: str, label: str) -> None:
    if "." not in claim.metric:
        raise _field_error(
            source,
            f"{label}.metric",
            f"{claim.metric!r} is not TABLE.COLUMN",
            "e.g. comparison.attention_reduction",
        )
    tables = results.TABLES
    if claim.table not in tables:
        raise _field_error(
            source,
            f"{label}.metric",
            f"unknown results table {claim.table!r}",
            "tables: " + ", ".join(sorted(tables)),
        )
    spec = tables[claim.table]
    if claim.column not in spec.names:
        raise _field_error(
            source,
            f"{label}.metric",
            f"table {claim.table!r} has no column {claim.column!r}",
            "columns: " + ", ".join(spec.names),
        )
    for key in claim.where:
        if key not in spec.names:
            raise _field_error(source, f"{label}.where.{key}", f"table {claim.table!r} has no column {key!r}")
    if not claim.low <= claim.high:
        raise _field_error(source, f"{label}.low/high", f"low {claim.low:g} is above high {claim.high:g}")
    known = set(MODULE_DEVICE_IDS.values())
    for device in claim.devices:
        if device not in known:
            raise _field_error(
                source, f"{label}.devices", f"unknown device id {device!r}", "ids: " + ", ".join(sorted(known))
            )
    if claim.model_kind not in (None, *MODEL_KINDS):
        raise _field_error(source, f"{label}.model_kind", f"is {claim.model_kind!r}", "use encoder or decoder")


def check_against_deck(claims: Claims, deck: CardDeck) -> None:
    """Each claim names an existing card whose Front starts as expected; every card is covered."""
    entries: list[Claim | NotMeasurable] = [*claims.claims, *claims.not_measurable]
    for entry in entries:
        label = entry.id if isinstance(entry, Claim) else f"not_measurable card {entry.card}"
        card = next((c for c in deck.cards if c.number == entry.card), None)
        if card is None:
            raise _field_error(
                claims.source,
                f"{label}.card",
                f"card {entry.card} is not in {deck.source} ({len(deck.cards)} cards)",
            )
        if entry.front_starts and not card.front.startswith(entry.front_starts):
            raise _field_error(
                claims.source,
                f"{label}.front_starts",
                f"card {entry.card} of {deck.source} starts {card.front[:40]!r}, not {entry.front_starts[:40]!r}",
                "the cards were reordered or edited; update the card numbers in claims.toml",
            )
    covered = {c.card for c in claims.claims} | {s.card for s in claims.not_measurable}
    missing = [c.number for c in deck.cards if c.number not in covered]
    if missing:
        raise _field_error(
            claims.source,
            "claims",
            f"card(s) {', '.join(map(str, missing))} of {deck.source} have neither a claim nor a not_measurable entry",
            "add a [[claim]] or a [[not_measurable]] with the reason",
        )


def load_claims(path: Path, deck: CardDeck | None = None) -> Claims:
    path = Path(path)
    if not path.is_file():
        raise OrinprofError(f"claims file {path} not found", "pass --claims PATH (the repository has claims.toml)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise OrinprofError(f"{path.name} is not valid TOML: {err}", "fix the line it names") from err
    except UnicodeDecodeError as err:
        raise OrinprofError(f"{path.name} is not UTF-8 text") from err
    return parse_claims(data, source=path.name, deck=deck)
