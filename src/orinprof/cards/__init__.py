"""Drill cards × measurements: ``cards.tsv`` claims → ``verdicts`` with evidence, the Amdahl check,
the experiments behind cards 3 (:mod:`~orinprof.cards.outliers`) and 6 and 10
(:mod:`~orinprof.cards.pruning`), and the Anki export.

Importing this package registers the ``verdicts``, ``pruning`` and ``outliers`` tables.
"""

from orinprof.cards.anki import export_deck, note_guid
from orinprof.cards.claims import Claim, Claims, NotMeasurable, load_claims, parse_claims
from orinprof.cards.deck import DECK_NAME, Card, CardDeck, format_cards, parse_cards, plain_text, read_cards
from orinprof.cards.outliers import activation_outlier_stats, outlier_experiment
from orinprof.cards.pruning import (
    PruneVariant,
    PruningRounds,
    TimedRun,
    default_variants,
    matched_head_fraction,
    paired_rounds,
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
    card9_ranges,
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
    "PruningRounds",
    "TimedRun",
    "activation_outlier_stats",
    "amdahl_check",
    "amdahl_claim_from",
    "card9_ranges",
    "default_variants",
    "export_deck",
    "format_cards",
    "load_claims",
    "load_evidence",
    "matched_head_fraction",
    "note_guid",
    "outlier_experiment",
    "paired_rounds",
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
