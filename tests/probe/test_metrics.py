"""Metrics on hand-computed cases; labels across splits; unseen labels."""

from __future__ import annotations

import numpy as np
import pytest

from redundancy.probe import LabelMap, default_metric, score, score_all


def test_accuracy_macro_f1_mcc_by_hand():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    assert score("accuracy", y, p) == pytest.approx(4 / 6)
    # per class F1: c0 P=1/2 R=1/2 -> 1/2; c1 P=2/3 R=1 -> 4/5; c2 P=1 R=1/2 -> 2/3
    assert score("macro_f1", y, p) == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    # binary MCC: TP=2 TN=1 FP=1 FN=0 -> (2*1 - 1*0) / sqrt(3*2*1*2)
    yb, pb = np.array([1, 1, 0, 0]), np.array([1, 1, 1, 0])
    assert score("mcc", yb, pb) == pytest.approx(2 / np.sqrt(12))


def test_binary_f1_uses_class_one_as_positive():
    names = ["0", "1"]
    y, p = np.array([1, 1, 0, 0, 1]), np.array([1, 0, 0, 1, 1])
    # positive "1": TP=2 FP=1 FN=1 -> F1 = 2/3
    assert score("f1", y, p, class_names=names) == pytest.approx(2 / 3)
    # the same ids named the other way round: positive is now id 0
    assert score("f1", y, p, class_names=["1", "0"]) == pytest.approx(0.5)


def test_chunk_f1_rebuilds_sentences_from_ids_and_positions():
    names = ["O", "B-NP", "I-NP", "B-VP"]
    # two sentences, items deliberately out of order
    sid = np.array([1, 0, 0, 1, 0, 0])
    pos = np.array([0, 1, 0, 1, 3, 2])
    # sentence 0 (by position): B-NP I-NP O B-VP ; sentence 1: B-NP O
    gold = np.array([1, 2, 1, 0, 3, 0])
    # prediction misses the VP and splits nothing else
    pred = np.array([1, 2, 1, 0, 0, 0])
    # 3 gold chunks (NP, VP, NP), 2 predicted, both right: P=1, R=2/3, F1=0.8
    assert score("chunk_f1", gold, pred, class_names=names, sentence_ids=sid, positions=pos) == pytest.approx(
        0.8
    )
    # order matters: I-NP must follow B-NP in word order; scrambled positions change the chunks
    assert score("chunk_f1", gold, gold, class_names=names, sentence_ids=sid, positions=pos) == 1.0


def test_correlations_against_hand_values():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([2.0, 4.0, 6.0, 9.0])
    r = np.corrcoef(y, p)[0, 1]
    assert score("pearson", y, p) == pytest.approx(r)
    assert score("spearman", y, p) == pytest.approx(1.0)
    assert np.isnan(score("pearson", y, np.ones(4)))  # constant prediction: undefined, not a crash
    assert set(score_all("pearson", "real", y, p)) == {"pearson", "spearman"}


def test_score_all_and_errors():
    y = np.array([0, 1, 1])
    assert list(score_all("accuracy", "class", y, y)) == ["accuracy", "macro_f1"]
    assert list(score_all("mcc", "class", y, y)) == ["mcc", "accuracy", "macro_f1"]
    with pytest.raises(ValueError):
        score("bleu", y, y)
    with pytest.raises(ValueError):
        score("accuracy", y, y[:2])
    assert np.isnan(score("accuracy", y[:0], y[:0]))


def test_default_metric_comes_from_the_task_registry():
    assert default_metric("pos", "class") == "accuracy"
    assert default_metric("chunking", "class") == "chunk_f1"
    assert default_metric("cola", "class") == "mcc"
    assert default_metric("stsb", "real") == "pearson"
    assert default_metric("no-such-task", "class") == "accuracy"


def test_labels_map_by_name_and_unseen_labels_count_as_errors():
    lm = LabelMap(("DET", "NOUN", "VERB"))
    dev_names = ("VERB", "INTJ", "DET", "X", "NOUN")  # dev's own vocabulary and order
    ids = np.array([0, 2, 4, 1, -1, 1, 3 - 3])
    y, unseen = lm.encode(dev_names, ids)
    assert unseen == ("INTJ",)  # "X" is in the vocabulary but no item carries it
    assert y.tolist() == [2, 0, 1, 3, -1, 3, 2]
    # an unseen label can never be predicted: it is an error for accuracy and a zero-F1 class
    pred = np.array([2, 0, 1, 0, 2, 2])
    mask = y >= 0
    assert score("accuracy", y[mask], pred) == pytest.approx(4 / 6)
    assert score("macro_f1", y[mask], pred) < score("macro_f1", y[mask][y[mask] < 3], pred[y[mask] < 3])
    assert lm.name_of([3, 1], unseen) == ["INTJ", "NOUN"]
