"""VocabIndex: token texts, special tokens, partial UTF-8, cached masks."""

from studio.decode.vocab import VocabIndex, vocab_index


def test_token_texts_concatenate_to_the_text(tokenizer):
    vi = vocab_index(tokenizer, len(tokenizer))
    for text in ["The old house, on the hill.\n\nA naïve café — ☃ 2024", "  two  spaces"]:
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert vi.decode(ids) == text


def test_special_tokens_write_nothing_and_are_never_offered(tokenizer):
    vi = vocab_index(tokenizer, len(tokenizer))
    for tid in tokenizer.all_special_ids:
        assert vi.special[tid] and vi.texts[tid] == ""
    m = vi.text_mask()
    assert all(m[e] for e in vi.eos_ids)
    others = [t for t in tokenizer.all_special_ids if t not in vi.eos_ids]
    assert others and not any(bool(m[t]) for t in others)


def test_partial_utf8_tokens_show_a_replacement_character(tokenizer):
    vi = vocab_index(tokenizer, len(tokenizer))
    ids = tokenizer.encode("☃", add_special_tokens=False)
    assert len(ids) > 1  # the snowman is split into byte tokens
    assert all("\ufffd" in vi.texts[i] for i in ids)
    assert vi.decode(ids) == "☃"


def test_masks_are_cached_and_padded_vocab_is_special(tokenizer):
    vi = VocabIndex(tokenizer, len(tokenizer) + 64)
    assert all(vi.special[len(tokenizer):])
    a = vi.mask("k", lambda i, t: "e" not in t)
    assert vi.mask("k", lambda i, t: True) is a
    assert not any(bool(a[i]) for i, t in enumerate(vi.texts) if "e" in t)
