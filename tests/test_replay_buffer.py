"""Hand-checked behaviour of isaacgymenvs/learning/replay_buffer.py."""

import pytest
import torch

from isaacgymenvs.learning.replay_buffer import ReplayBuffer


def rows(*values):
    """rows(0, 1, 2) -> [[0.], [1.], [2.]] (D = 1, so contents read as numbers)."""
    return torch.tensor(values, dtype=torch.float32).unsqueeze(-1)


def contents(buf):
    """Storage in slot order, filled part only, as a list of numbers."""
    return buf.data[: len(buf), 0].tolist()


def test_store_fills_in_order():
    buf = ReplayBuffer(capacity=4, dim=1)
    assert len(buf) == 0
    buf.store(rows(0, 1, 2))
    assert len(buf) == 3
    assert contents(buf) == [0, 1, 2]


def test_wrap_around_overwrites_oldest():
    # slots 0..3 get 0,1,2 then 3; 4 and 5 wrap to slots 0 and 1
    buf = ReplayBuffer(capacity=4, dim=1)
    buf.store(rows(0, 1, 2))
    buf.store(rows(3, 4, 5))
    assert len(buf) == 4
    assert contents(buf) == [4, 5, 2, 3]
    assert buf.head == 2


def test_store_more_than_capacity_at_once_matches_row_by_row():
    # 0..9 into 4 slots: row i lands in slot i % 4, the last writes win:
    # slot 0 <- 8, slot 1 <- 9, slot 2 <- 6, slot 3 <- 7
    big = ReplayBuffer(capacity=4, dim=1)
    big.store(rows(*range(10)))
    one = ReplayBuffer(capacity=4, dim=1)
    for i in range(10):
        one.store(rows(i))
    assert contents(big) == [8, 9, 6, 7]
    assert contents(one) == [8, 9, 6, 7]
    assert big.head == one.head == 2
    assert big.num_stored == one.num_stored == 10


def test_keep_prob_zero_after_full_keeps_contents():
    buf = ReplayBuffer(capacity=4, dim=1, keep_prob=0.0)
    buf.store(rows(0, 1, 2, 3))
    buf.store(rows(10, 11, 12, 13))
    assert contents(buf) == [0, 1, 2, 3]
    assert buf.num_seen == 8
    assert buf.num_stored == 4


def test_keep_prob_only_applies_past_capacity_within_one_call():
    # capacity 4, keep_prob 0, one call with 6 rows: rows 0..3 arrive while
    # filling and are kept, rows 4 and 5 arrive past capacity and are dropped
    buf = ReplayBuffer(capacity=4, dim=1, keep_prob=0.0)
    buf.store(rows(0, 1, 2, 3, 4, 5))
    assert contents(buf) == [0, 1, 2, 3]


def test_keep_prob_one_overwrites():
    buf = ReplayBuffer(capacity=4, dim=1, keep_prob=1.0)
    buf.store(rows(0, 1, 2, 3))
    buf.store(rows(10, 11, 12, 13))
    assert contents(buf) == [10, 11, 12, 13]


def test_keep_prob_fraction_keeps_about_that_share():
    # 10000 rows past capacity at keep_prob 0.1 -> ~1000 kept
    # (binomial std = sqrt(10000 * 0.1 * 0.9) = 30, so +-150 is 5 sigma)
    g = torch.Generator().manual_seed(0)
    buf = ReplayBuffer(capacity=1000, dim=1, keep_prob=0.1, generator=g)
    buf.store(torch.zeros(1000, 1))
    buf.store(torch.ones(10000, 1))
    kept = buf.num_stored - 1000
    assert 850 <= kept <= 1150
    # each kept row overwrote one zero, slots filled in ring order
    assert int(buf.data.sum().item()) == min(kept, 1000)


def test_sample_without_replacement_unique_rows():
    buf = ReplayBuffer(capacity=10, dim=1, generator=torch.Generator().manual_seed(1))
    buf.store(rows(*range(10)))
    s = buf.sample(10)[:, 0].tolist()
    assert sorted(s) == list(range(10))  # all 10 rows, each once
    s = buf.sample(4)[:, 0].tolist()
    assert len(set(s)) == 4


def test_sample_only_from_filled_part():
    # 5 of 10 slots filled with 1..5; the 5 empty slots hold 0 and must not appear
    buf = ReplayBuffer(capacity=10, dim=1)
    buf.store(rows(1, 2, 3, 4, 5))
    assert sorted(buf.sample(5)[:, 0].tolist()) == [1, 2, 3, 4, 5]


def test_sample_more_than_filled_uses_replacement():
    buf = ReplayBuffer(capacity=10, dim=1)
    buf.store(rows(1, 2, 3, 4, 5))
    s = buf.sample(8)
    assert s.shape == (8, 1)
    assert set(s[:, 0].tolist()) <= {1, 2, 3, 4, 5}


def test_sample_empty_raises():
    buf = ReplayBuffer(capacity=4, dim=3)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(1)


def test_sample_negative_raises_and_zero_is_empty():
    buf = ReplayBuffer(capacity=4, dim=3)
    buf.store(torch.ones(2, 3))
    with pytest.raises(ValueError):
        buf.sample(-1)
    assert buf.sample(0).shape == (0, 3)


def test_generator_makes_samples_reproducible():
    def draw(seed):
        buf = ReplayBuffer(capacity=100, dim=1, keep_prob=0.5, generator=torch.Generator().manual_seed(seed))
        buf.store(rows(*range(150)))
        return buf.sample(20)

    assert torch.equal(draw(3), draw(3))


def test_store_casts_dtype_and_detaches():
    buf = ReplayBuffer(capacity=4, dim=2)
    x = torch.ones(2, 2, dtype=torch.float64, requires_grad=True)
    buf.store(x)
    assert buf.data.dtype == torch.float32
    assert not buf.sample(2).requires_grad


def test_store_bad_shape_raises():
    buf = ReplayBuffer(capacity=4, dim=3)
    with pytest.raises(ValueError, match=r"\[n, 3\]"):
        buf.store(torch.zeros(2, 2))
    with pytest.raises(ValueError):
        buf.store(torch.zeros(3))


@pytest.mark.parametrize(
    "kwargs", [dict(capacity=0, dim=1), dict(capacity=4, dim=0), dict(capacity=4, dim=1, keep_prob=1.5)]
)
def test_bad_constructor_args_raise(kwargs):
    with pytest.raises(ValueError):
        ReplayBuffer(**kwargs)


def test_state_dict_round_trip():
    buf = ReplayBuffer(capacity=4, dim=1)
    buf.store(rows(0, 1, 2, 3, 4, 5))  # [4, 5, 2, 3], head 2
    state = buf.state_dict()

    restored = ReplayBuffer(capacity=4, dim=1)
    restored.load_state_dict(state)
    assert contents(restored) == [4, 5, 2, 3]
    assert (restored.head, len(restored), restored.num_seen, restored.num_stored) == (2, 4, 6, 6)
    # both continue identically: 6 goes to slot 2
    buf.store(rows(6))
    restored.store(rows(6))
    assert contents(restored) == contents(buf) == [4, 5, 6, 3]


def test_state_dict_partial_buffer_and_is_a_copy():
    buf = ReplayBuffer(capacity=4, dim=1)
    buf.store(rows(7, 8))
    state = buf.state_dict()
    assert state["data"].shape == (2, 1)  # only filled rows are saved
    buf.store(rows(9, 9, 9, 9))
    assert state["data"][:, 0].tolist() == [7, 8]  # not a view of live storage

    restored = ReplayBuffer(capacity=4, dim=1)
    restored.load_state_dict(state)
    assert contents(restored) == [7, 8]
    restored.store(rows(1))
    assert contents(restored) == [7, 8, 1]


def test_load_state_dict_mismatch_raises():
    state = ReplayBuffer(capacity=4, dim=1).state_dict()
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(capacity=8, dim=1).load_state_dict(state)
    with pytest.raises(ValueError, match="dim"):
        ReplayBuffer(capacity=4, dim=2).load_state_dict(state)
