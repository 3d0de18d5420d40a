"""Drill cards × measurements: ``cards.tsv`` claims → ``verdicts`` with evidence, the Amdahl check,
the experiments behind cards 3, 6 and 10, and the Anki export.

Importing this package registers the ``verdicts``, ``pruning`` and ``outliers`` tables.
"""

from orinprof.cards.anki import export_deck, note_guid
from orinprof.cards.claims import Claim, Claims, NotMeasurable, load_claims, parse_claims
from orinprof.cards.deck import DECK_NAME, Card, CardDeck, format_cards, parse_cards, plain_text, read_cards
from orinprof.cards.experiments import (
    PruneVariant,
    TimedRun,
    activation_outlier_stats,
    default_variants,
    matched_head_fraction,
    outlier_experiment,
    pruning,
    pruning_table,
    pruning_variants,
    run_pruning_experiment,
    timed_run_from,
    variant_spec,
    zero_smallest_weights,
)
from orinprof.cards.verdicts import (
    AmdahlClaim,
    Evidence,
    amdahl_check,
    amdahl_claim_from,
    load_evidence,
    seq_sweep_table,
    unused_path,
    validate,
    verdicts_from,
    write_table_file,
    write_verdicts,
)

__all__ = [
    "DECK_NAME",
    "AmdahlClaim",
    "Card",
    "CardDeck",
    "Claim",
    "Claims",
    "Evidence",
    "NotMeasurable",
    "PruneVariant",
    "TimedRun",
    "activation_outlier_stats",
    "amdahl_check",
    "amdahl_claim_from",
    "default_variants",
    "export_deck",
    "format_cards",
    "load_claims",
    "load_evidence",
    "matched_head_fraction",
    "note_guid",
    "outlier_experiment",
    "parse_cards",
    "parse_claims",
    "plain_text",
    "pruning",
    "pruning_table",
    "pruning_variants",
    "read_cards",
    "run_pruning_experiment",
    "seq_sweep_table",
    "timed_run_from",
    "unused_path",
    "validate",
    "variant_spec",
    "verdicts_from",
    "write_table_file",
    "write_verdicts",
    "zero_smallest_weights",
]
