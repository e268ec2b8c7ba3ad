"""Head symmetry: the paper's concatenation head is order-dependent; ours are not."""
from __future__ import annotations

import pytest
import torch

from embedder.head import AveragedConcatHead, ConcatHead, SymmetricHead, build_head


@pytest.mark.parametrize("kind", ["symmetric", "concat_sym"])
def test_symmetric_heads_score_both_orders_the_same(kind: str) -> None:
    torch.manual_seed(0)
    head = build_head(kind, 16, (32, 8))
    a, b = torch.randn(10, 16), torch.randn(10, 16)
    assert head.symmetric
    torch.testing.assert_close(head(a, b), head(b, a), rtol=0, atol=1e-6)
    assert head(a, b).shape == (10,)


def test_paper_concat_head_is_not_symmetric() -> None:
    torch.manual_seed(0)
    head = ConcatHead(16, (32, 8))
    a, b = torch.randn(10, 16), torch.randn(10, 16)
    assert not head.symmetric
    assert (head(a, b) - head(b, a)).abs().max() > 1e-3


def test_averaged_head_is_mean_of_both_orders() -> None:
    torch.manual_seed(1)
    avg = AveragedConcatHead(4, (6,))
    plain = ConcatHead(4, (6,))
    plain.load_state_dict(avg.state_dict())
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(avg(a, b), 0.5 * (plain(a, b) + plain(b, a)))


def test_paper_head_shape() -> None:
    head = build_head("concat", 4096, (512, 256, 64, 16))
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(8192, 512), (512, 256), (256, 64), (64, 16), (16, 1)]


def test_symmetric_head_feature_is_order_free() -> None:
    head = SymmetricHead(3, ())
    with pytest.raises(ValueError):
        build_head("nope", 3, ())
    a = torch.tensor([[1.0, 0.0, 0.0]])
    assert head(a, a).shape == (1,)
