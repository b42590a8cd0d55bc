"""Window planning for sentences longer than the model's limit."""

from hypothesis import given, settings
from hypothesis import strategies as st

from redundancy.extract import plan_windows


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=80), st.integers(6, 30), st.floats(0.0, 0.9))
def test_windows_fit_overlap_and_owned_ranges_tile(counts, budget, overlap):
    wins = plan_windows(counts, budget, overlap)
    owned = [w for _, _, a, b in wins for w in range(a, b)]
    assert owned == list(range(len(counts)))  # every word exactly once, in order
    for start, end, a, b in wins:
        assert start <= a < b <= end
        assert sum(counts[start:end]) <= budget or end - start == 1
    starts = [w[0] for w in wins]
    assert starts == sorted(set(starts))


def test_short_sentence_is_one_window_and_owner_has_most_context():
    assert plan_windows([1, 1, 1], 10) == [(0, 3, 0, 3)]
    wins = plan_windows([1] * 20, 10, 0.5)
    assert wins[0][0] == 0 and wins[-1][1] == 20
    # a word in the middle of the sentence is owned by a window in which it is not at an edge
    for start, end, a, b in wins[1:-1]:
        assert a > start and b < end


def test_word_longer_than_budget_gets_its_own_window():
    wins = plan_windows([2, 50, 2], 10)
    assert (1, 2, 1, 2) in wins
