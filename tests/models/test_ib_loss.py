import math
from collections.abc import Iterator

import pytest
import torch

from models.ib_loss import IBTerms, InformationBottleneck, ib_weight, mutual_information, soft_joint


@pytest.mark.parametrize("k", [2, 5])
def test_diagonal_uniform_joint_gives_log_k(k: int) -> None:
    assert mutual_information(torch.eye(k) / k).item() == pytest.approx(math.log(k), abs=1e-5)


def test_unnormalised_joint_is_normalised() -> None:
    assert mutual_information(7.0 * torch.eye(3)).item() == pytest.approx(math.log(3), abs=1e-5)


def test_independent_product_joint_gives_zero() -> None:
    pc = torch.tensor([0.1, 0.2, 0.3, 0.4])
    pa = torch.tensor([0.5, 0.3, 0.2])
    assert mutual_information(torch.outer(pc, pa)).item() == pytest.approx(0.0, abs=1e-6)


def test_soft_joint_of_hard_assignments_equal_to_labels_gives_log_k() -> None:
    k = 4
    labels = torch.arange(32) % k
    joint = soft_joint(torch.nn.functional.one_hot(labels, k).float(), labels, k)
    assert joint.shape == (k, k)
    assert joint.sum().item() == pytest.approx(1.0)
    assert mutual_information(joint).item() == pytest.approx(math.log(k), abs=1e-5)


def test_assignments_independent_of_labels_give_zero() -> None:
    labels = torch.arange(30) % 3
    constant = torch.zeros(30, 5)
    constant[:, 2] = 1.0
    assert mutual_information(soft_joint(constant, labels, 3)).item() == pytest.approx(0.0, abs=1e-6)
    uniform = torch.full((30, 5), 0.2)
    assert mutual_information(soft_joint(uniform, labels, 3)).item() == pytest.approx(0.0, abs=1e-6)


def test_soft_joint_rejects_mismatched_batch() -> None:
    with pytest.raises(ValueError):
        soft_joint(torch.full((4, 2), 0.5), torch.zeros(5, dtype=torch.long), 2)


def test_assign_rows_are_distributions_and_seed_is_deterministic() -> None:
    a, b = InformationBottleneck(8, 3, seed=1), InformationBottleneck(8, 3, seed=1)
    assert torch.equal(a.centroids, b.centroids)
    assert not torch.equal(a.centroids, InformationBottleneck(8, 3, seed=2).centroids)
    assert torch.allclose(a.centroids.norm(dim=1), torch.ones(3))
    q = a.assign(torch.randn(6, 8, generator=torch.Generator().manual_seed(0)))
    assert q.shape == (6, 3)
    assert torch.allclose(q.sum(dim=1), torch.ones(6))
    at_centroids = a.assign(3.0 * a.centroids.detach())
    assert torch.equal(at_centroids.argmax(dim=1), torch.arange(3))


def test_loss_is_differentiable() -> None:
    ib = InformationBottleneck(dim=6, num_clusters=4, beta=2.0)
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(16, 6, generator=gen, requires_grad=True)
    x = torch.randint(0, 3, (16,), generator=gen)
    y = torch.randint(0, 2, (16,), generator=gen)
    terms = ib(features, x, y, num_input_clusters=3, num_classes=2)
    assert isinstance(terms, IBTerms)
    assert torch.allclose(terms.loss, terms.i_zx - 2.0 * terms.i_zy)
    terms.loss.backward()
    for grad in (features.grad, ib.centroids.grad):
        assert grad is not None
        assert torch.isfinite(grad).all()
        assert grad.abs().sum() > 0


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny ops: intra-op threads only add contention (10x slower on a loaded 2-core runner)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_thread")
def test_minimising_loss_keeps_label_information_and_drops_input_clusters() -> None:
    """X and Y are exactly independent in the batch, so the optimum encodes Y and nothing of X."""
    num_x, num_y, dim = 8, 4, 8
    b = torch.arange(64)
    x, y = b % num_x, b // 16
    ib = InformationBottleneck(dim=dim, num_clusters=num_y, beta=2.0, temperature=0.25, seed=0)
    features = torch.nn.Parameter(torch.randn(64, dim, generator=torch.Generator().manual_seed(1)))
    opt = torch.optim.Adam([features, *ib.parameters()], lr=0.05)
    with torch.no_grad():
        start = ib(features, x, y, num_x, num_y)
    for _ in range(300):
        opt.zero_grad()
        ib(features, x, y, num_x, num_y).loss.backward()
        opt.step()
    with torch.no_grad():
        end = ib(features, x, y, num_x, num_y)
    assert end.i_zy.item() > start.i_zy.item() + 0.3
    assert end.i_zy.item() > 0.75 * math.log(num_y)
    assert end.i_zx.item() <= math.log(num_x)
    assert end.i_zx.item() < end.i_zy.item() / 4
    assert end.loss.item() < start.loss.item()


def test_ib_weight_schedule() -> None:
    assert ib_weight(0.0) == 0.0
    assert ib_weight(0.29) == 0.0
    assert ib_weight(0.3) == 0.1
    assert ib_weight(1.0) == 0.1
    assert ib_weight(0.5, weight=0.2, start=0.6) == 0.0
    assert ib_weight(0.7, weight=0.2, start=0.6) == 0.2
    with pytest.raises(ValueError):
        ib_weight(1.5)
