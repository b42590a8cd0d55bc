"""Turn a task split into model inputs: segments (one per sentence, or per window) and their targets.

A *target* is one stored row: an item index and the token positions (in the unpadded sequence)
whose hidden states are pooled into it. Token tasks pool a word's subwords; sentence tasks pool
[CLS], the last token, or all non-special tokens. Keeping this pure (tokenizer in, lists out)
lets the tests check alignment without running a model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..data import SentenceExample, TokenSentence

logger = logging.getLogger(__name__)

TOKEN_AGGREGATIONS = ("first", "last", "mean")
SENTENCE_AGGREGATIONS = ("cls", "last", "mean")


_SLICE = 512  # sentences tokenized per call: bounds the tokenizer's per-token bookkeeping in memory
_KEYS = ("input_ids", "token_type_ids")


class Segment:
    """One model input: its token ids, and the rows it fills with the positions pooled into each.

    Held as small int arrays (CSR layout for the positions), not Python lists: a plan for the
    200k words of EWT train then costs a few MB instead of a few hundred.
    """

    __slots__ = ("sentence", "encoding", "items", "ptr", "positions")

    def __init__(self, sentence: int, encoding, targets: list[tuple[int, list[int]]]):
        self.sentence = sentence
        self.encoding = {k: np.asarray(encoding[k], dtype=np.int32) for k in _KEYS if k in encoding}
        self.items = np.asarray([t[0] for t in targets], dtype=np.int64)
        self.ptr = np.cumsum([0] + [len(t[1]) for t in targets], dtype=np.int64)
        self.positions = np.asarray([p for t in targets for p in t[1]], dtype=np.int64)

    @property
    def length(self) -> int:
        return len(self.encoding["input_ids"])

    @property
    def n_rows(self) -> int:
        return len(self.items)

    @property
    def targets(self) -> list[tuple[int, list[int]]]:
        """``[(item, positions), ...]``: for reading and tests; the hot path uses the arrays."""
        return [
            (int(self.items[r]), self.positions[self.ptr[r] : self.ptr[r + 1]].tolist())
            for r in range(self.n_rows)
        ]


@dataclass
class PlanStats:
    """What had to be adapted while planning; all of it is logged and recorded in the manifest."""

    n_windowed: int = 0
    n_windows: int = 0
    n_truncated: int = 0
    n_empty_words: int = 0
    n_cut_words: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _word_positions(word_ids: list[int | None], n_words: int) -> list[list[int]]:
    pos: list[list[int]] = [[] for _ in range(n_words)]
    for t, w in enumerate(word_ids):
        if w is not None:
            pos[w].append(t)
    return pos


def _pick(positions: list[int], aggregation: str) -> list[int]:
    """The subword positions pooled into a word's row."""
    if aggregation == "first":
        return positions[:1]
    if aggregation == "last":
        return positions[-1:]
    return positions


def plan_windows(counts: list[int], budget: int, overlap: float = 0.5) -> list[tuple[int, int, int, int]]:
    """Split words with ``counts`` subwords into windows of at most ``budget`` subwords.

    Consecutive windows share about ``overlap`` of the budget as context. Each word is *owned* by
    exactly one window: the one where it sits farthest from an edge, so it gets the most context.
    Returns ``(start, end, own_start, own_end)`` word ranges; the owned ranges tile ``0..n``.
    A word longer than the whole budget gets a window of its own (the caller truncates it).
    """
    n = len(counts)
    windows: list[tuple[int, int]] = []
    s = 0
    while True:
        e, total = s, 0
        while e < n and (total + counts[e] <= budget or e == s):
            total += counts[e]
            e += 1
        windows.append((s, e))
        if e >= n:
            break
        # Next start: keep about overlap * budget subwords of left context, but always advance.
        nxt, ctx = e, 0
        while nxt - 1 > s and ctx + counts[nxt - 1] <= overlap * budget:
            nxt -= 1
            ctx += counts[nxt]
        s = max(nxt, s + 1)
    owner = []
    for w in range(n):
        best, best_margin = 0, -1
        for i, (a, b) in enumerate(windows):
            if a <= w < b:
                margin = min(w - a, b - 1 - w)
                if margin > best_margin:
                    best, best_margin = i, margin
        owner.append(best)
    out = []
    for i, (a, b) in enumerate(windows):
        owned = [w for w in range(a, b) if owner[w] == i]
        if owned:
            out.append((a, b, owned[0], owned[-1] + 1))
    return out


def plan_token_segments(
    sentences: tuple[TokenSentence, ...] | list[TokenSentence],
    tokenizer,
    *,
    aggregation: str,
    max_length: int,
    overlap: float = 0.5,
) -> tuple[list[Segment], PlanStats]:
    """One segment per sentence (or per window of a sentence longer than ``max_length``).

    Rows are words in data order: sentence 0's words, then sentence 1's, and so on.
    """
    if aggregation not in TOKEN_AGGREGATIONS:
        raise ValueError(f"token aggregation must be one of {TOKEN_AGGREGATIONS}, got {aggregation!r}")
    stats = PlanStats()
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    if budget < 1:
        raise ValueError(f"max_length {max_length} leaves no room for words")
    filler = tokenizer.unk_token or "?"
    segments: list[Segment] = []
    offset = 0
    for i, sent in enumerate(sentences):
        if i % _SLICE == 0:
            batch = [list(s.words) for s in sentences[i : i + _SLICE]]
            encs = tokenizer(batch, is_split_into_words=True, add_special_tokens=True, verbose=False)
        words = list(sent.words)
        n = len(words)
        enc = {k: encs[k][i % _SLICE] for k in _KEYS if k in encs}
        pos = _word_positions(encs.word_ids(i % _SLICE), n)
        empty = [w for w in range(n) if not pos[w]]
        if empty:
            # A word the tokenizer maps to nothing (e.g. a lone control character) would have no
            # vector; stand the unknown token in for it so every word keeps its row.
            stats.n_empty_words += len(empty)
            logger.warning(
                "sentence %d (%s:%d): %d word(s) produce no subwords, replaced by %r: %r",
                sent.index,
                sent.source,
                sent.line,
                len(empty),
                filler,
                [words[w] for w in empty],
            )
            words = [filler if not pos[w] else w_ for w, w_ in enumerate(words)]
            enc = tokenizer(words, is_split_into_words=True, add_special_tokens=True, verbose=False)
            pos = _word_positions(enc.word_ids(), n)
        if len(enc["input_ids"]) <= max_length:
            segments.append(Segment(i, enc, [(offset + w, _pick(pos[w], aggregation)) for w in range(n)]))
        else:
            counts = [len(p) for p in pos]
            windows = plan_windows(counts, budget, overlap)
            stats.n_windowed += 1
            stats.n_windows += len(windows)
            for a, b, oa, ob in windows:
                wenc = tokenizer(words[a:b], is_split_into_words=True, truncation=True, max_length=max_length)
                wpos = _word_positions(wenc.word_ids(), b - a)
                if counts[a] > budget and b - a == 1:
                    stats.n_cut_words += 1
                    logger.warning(
                        "sentence %d (%s:%d): word %r has %d subwords, more than the %d that fit; "
                        "only its first %d are used",
                        sent.index,
                        sent.source,
                        sent.line,
                        words[a],
                        counts[a],
                        budget,
                        budget,
                    )
                targets = [(offset + w, _pick(wpos[w - a], aggregation)) for w in range(oa, ob)]
                segments.append(Segment(i, wenc, targets))
        offset += n
    if stats.n_windowed:
        logger.info(
            "%d sentence(s) longer than %d tokens were split into %d overlapping windows; no word is lost",
            stats.n_windowed,
            max_length,
            stats.n_windows,
        )
    return segments, stats


def plan_sentence_segments(
    examples: tuple[SentenceExample, ...] | list[SentenceExample],
    tokenizer,
    *,
    aggregation: str,
    max_length: int,
) -> tuple[list[Segment], PlanStats]:
    """One segment per example (pairs encoded as the tokenizer defines); longer inputs are truncated.

    ``cls`` pools the classifier token wherever the tokenizer puts it (first for BERT, last for
    XLNet); ``last`` the last real token (the natural summary of a left-to-right model such as GPT-2);
    ``mean`` all non-special tokens.
    """
    if aggregation not in SENTENCE_AGGREGATIONS:
        raise ValueError(f"sentence aggregation must be one of {SENTENCE_AGGREGATIONS}, got {aggregation!r}")
    stats = PlanStats()
    texts = [e.text for e in examples]
    pairs = [e.text_pair for e in examples]
    has_pairs = any(p is not None for p in pairs)
    if has_pairs and any(p is None for p in pairs):
        raise ValueError("a sentence-pair task has examples without a second sentence")
    args = (texts, pairs) if has_pairs else (texts,)
    full = tokenizer(*args, add_special_tokens=True, verbose=False)  # lengths before truncation
    encs = tokenizer(
        *args,
        add_special_tokens=True,
        truncation=True,
        max_length=max_length,
        return_special_tokens_mask=True,
    )
    cls_id = tokenizer.cls_token_id
    if aggregation == "cls" and cls_id is None:
        raise ValueError(
            "this tokenizer has no classifier token ([CLS]); use aggregation 'last' (left-to-right "
            "models such as GPT-2) or 'mean'"
        )
    segments = []
    first_cut = None
    for i, ex in enumerate(examples):
        ids = encs["input_ids"][i]
        if len(full["input_ids"][i]) > len(ids):
            stats.n_truncated += 1
            where = f"{ex.source}:{ex.line}" if ex.source else f"item {ex.index}"
            first_cut = first_cut or f"{where}, {len(full['input_ids'][i])} tokens"
        if aggregation == "cls":
            where = [t for t, tok in enumerate(ids) if tok == cls_id]
            if not where:
                raise ValueError(
                    f"example {ex.index} ({ex.source}:{ex.line}): no classifier token after encoding"
                )
            positions = [where[0]]
        elif aggregation == "last":
            positions = [len(ids) - 1]
        else:
            special = encs["special_tokens_mask"][i]
            positions = [t for t in range(len(ids)) if not special[t]] or list(range(len(ids)))
        segments.append(Segment(i, {k: encs[k][i] for k in _KEYS if k in encs}, [(i, positions)]))
    if stats.n_truncated:
        logger.warning(
            "%d of %d example(s) are longer than %d tokens and were truncated to that length "
            "(longest_first: a pair's longer text is cut first; the first such example: %s)",
            stats.n_truncated,
            len(examples),
            max_length,
            first_cut,
        )
    return segments, stats
