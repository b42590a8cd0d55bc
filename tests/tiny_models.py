"""Tiny random-weight models with tokenizers built here, saved as ordinary model folders.

They prove the plumbing (alignment, padding sides, pooling); numbers computed with them mean
nothing about real models.
"""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = [
    "The unbelievable cats sat on the mat .",
    "Charles de Gaulle visited Montreal yesterday !",
    "A short one .",
    "Tokenization of extraordinarily long words happens rarely .",
    "is this a question ? yes , it is .",
]
KINDS = ("bert", "mpnet", "roberta", "gpt2", "xlnet")


def _wordpiece_vocab(specials: list[str]) -> dict[str, int]:
    words = sorted({w.lower() for line in CORPUS for w in line.split()})
    pieces = [
        "un",
        "##bel",
        "##iev",
        "##able",
        "cat",
        "##s",
        "token",
        "##ization",
        "extra",
        "##ordinari",
        "##ly",
    ]
    chars = sorted({c for line in CORPUS for c in line.lower() if not c.isspace()})
    vocab = list(
        dict.fromkeys(specials + pieces + words[: len(words) // 2] + chars + ["##" + c for c in chars])
    )
    return {t: i for i, t in enumerate(vocab)}


def build(
    kind: str, path: Path, *, layers: int = 2, hidden: int = 32, max_positions: int = 64, seed: int = 0
) -> Path:
    """Save a tiny ``kind`` model and its tokenizer in ``path``; return ``path``."""
    import torch
    from tokenizers import ByteLevelBPETokenizer, SentencePieceUnigramTokenizer
    from transformers import (
        BertConfig,
        BertModel,
        BertTokenizer,
        GPT2Config,
        GPT2Model,
        GPT2Tokenizer,
        MPNetConfig,
        MPNetModel,
        MPNetTokenizer,
        RobertaConfig,
        RobertaModel,
        RobertaTokenizer,
        XLNetConfig,
        XLNetModel,
        XLNetTokenizer,
    )

    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    common = dict(num_attention_heads=2, intermediate_size=hidden * 2)
    if kind == "bert":
        tok = BertTokenizer(vocab=_wordpiece_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
        cfg = BertConfig(
            vocab_size=len(tok),
            hidden_size=hidden,
            num_hidden_layers=layers,
            max_position_embeddings=max_positions,
            **common,
        )
        model = BertModel(cfg)
    elif kind == "mpnet":
        tok = MPNetTokenizer(vocab=_wordpiece_vocab(["<s>", "<pad>", "</s>", "<unk>", "<mask>"]))
        cfg = MPNetConfig(
            vocab_size=len(tok),
            hidden_size=hidden,
            num_hidden_layers=layers,
            max_position_embeddings=max_positions,
            pad_token_id=tok.pad_token_id,
            **common,
        )
        model = MPNetModel(cfg)
    elif kind == "gpt2":
        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator(
            CORPUS * 20, vocab_size=300, min_frequency=1, special_tokens=["<|endoftext|>"]
        )
        bpe.save_model(str(path))
        tok = GPT2Tokenizer(vocab=str(path / "vocab.json"), merges=str(path / "merges.txt"))
        cfg = GPT2Config(
            vocab_size=len(tok),
            n_embd=hidden,
            n_layer=layers,
            n_head=2,
            n_positions=max_positions,
            bos_token_id=tok.eos_token_id,
            eos_token_id=tok.eos_token_id,
        )
        model = GPT2Model(cfg)
    elif kind == "roberta":
        bpe = ByteLevelBPETokenizer()
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        bpe.train_from_iterator(CORPUS * 20, vocab_size=300, min_frequency=1, special_tokens=specials)
        bpe.save_model(str(path))
        tok = RobertaTokenizer(vocab=str(path / "vocab.json"), merges=str(path / "merges.txt"))
        cfg = RobertaConfig(
            vocab_size=len(tok),
            hidden_size=hidden,
            num_hidden_layers=layers,
            max_position_embeddings=max_positions + 2,  # positions start after the padding index
            pad_token_id=tok.pad_token_id,
            **common,
        )
        model = RobertaModel(cfg)
    elif kind == "xlnet":
        uni = SentencePieceUnigramTokenizer()
        uni.train_from_iterator(
            CORPUS * 20,
            vocab_size=120,
            unk_token="<unk>",
            special_tokens=["<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>"],
        )
        vocab = json.loads(uni.to_str())["model"]["vocab"]
        tok = XLNetTokenizer(vocab=[tuple(v) for v in vocab])
        cfg = XLNetConfig(
            vocab_size=len(tok),
            d_model=hidden,
            n_layer=layers,
            n_head=2,
            d_inner=hidden * 2,
            pad_token_id=tok.pad_token_id,
        )
        model = XLNetModel(cfg)
    else:  # pragma: no cover
        raise ValueError(kind)
    tok.model_max_length = max_positions if kind != "mpnet" else max_positions - 2
    model.eval()
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
