"""Small in-memory task splits for extraction tests (labels are toy word-length classes)."""

from __future__ import annotations

from redundancy.data import SentenceExample, TaskData, TaskSpec, TokenSentence

WORDS = [
    ["The", "unbelievable", "cats", "sat", "on", "the", "mat", "."],
    ["Charles de Gaulle", "visited", "Montreal", "yesterday", "!"],
    ["A", "short", "one", "."],
    ["Tokenization", "of", "extraordinarily", "long", "words", "happens", "rarely", "."],
    ["is", "this", "a", "question", "?"],
    ["Hi"],
]


def token_task(sentences=WORDS, name="toy") -> TaskData:
    """A token task over ``sentences`` labelled with each word's length class."""
    spec = TaskSpec(name=name, level="token", label_type="class", metric="accuracy", splits=("train",))
    items = tuple(
        TokenSentence(
            index=i,
            words=tuple(ws),
            labels=tuple("L" if len(w) > 3 else "S" for w in ws),
            source="mem",
            line=i + 1,
        )
        for i, ws in enumerate(sentences)
    )
    return TaskData(spec=spec, split="train", items=items, files={"mem": "0" * 64}, labels=("L", "S"))


def sentence_task(pairs: bool = False, real: bool = False) -> TaskData:
    level = "sentence_pair" if pairs else "sentence"
    spec = TaskSpec(
        name="toy-s",
        level=level,
        label_type="real" if real else "class",
        metric="accuracy",
        splits=("train",),
    )
    items = tuple(
        SentenceExample(
            index=i,
            text=" ".join(ws),
            text_pair=" ".join(reversed(ws)) if pairs else None,
            label=float(i) / 2 if real else ("pos" if i % 2 else "neg"),
            source="mem",
            line=i + 1,
        )
        for i, ws in enumerate(WORDS)
    )
    return TaskData(spec=spec, split="train", items=items, files={"mem": "0" * 64})
