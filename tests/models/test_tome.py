"""ToMe against a brute-force reference written from the paper, token by token."""

from __future__ import annotations

import torch

from models.tome import ToMeMerge


def brute_force_tome(x: torch.Tensor, sizes: torch.Tensor, keys: torch.Tensor, r: int):
    """Loops over one image: A = even tokens, B = odd; merge the r A tokens most similar to B."""
    a_idx, b_idx = list(range(0, len(x), 2)), list(range(1, len(x), 2))
    unit = keys / keys.norm(dim=-1, keepdim=True)
    best = {}
    for i in a_idx:
        sims = [(float(unit[i] @ unit[j]), j) for j in b_idx]
        score, partner = max(sims)
        best[i] = (score, partner)
    merged_a = sorted(a_idx, key=lambda i: -best[i][0])[:r]
    mass = {j: x[j] * sizes[j] for j in b_idx}
    weight = {j: sizes[j].clone() for j in b_idx}
    for i in merged_a:
        j = best[i][1]
        mass[j] = mass[j] + x[i] * sizes[i]
        weight[j] = weight[j] + sizes[i]
    kept_a = [i for i in a_idx if i not in merged_a]
    tokens = {tuple(x[i].tolist()) for i in kept_a} | {tuple((mass[j] / weight[j]).tolist()) for j in b_idx}
    return tokens, sorted([float(sizes[i]) for i in kept_a] + [float(weight[j]) for j in b_idx])


def test_tome_matches_brute_force():
    torch.manual_seed(3)
    x, keys = torch.randn(1, 11, 5), torch.randn(1, 11, 6)
    sizes = torch.randint(1, 4, (1, 11)).float()
    merger = ToMeMerge()
    merger.r = 4
    merged, new_sizes, mask = merger(x, sizes, keys, want_mask=True)
    expected_tokens, expected_sizes = brute_force_tome(x[0], sizes[0], keys[0], 4)
    assert merged.shape == (1, 7, 5)
    assert sorted(new_sizes[0].tolist()) == expected_sizes
    got = {tuple(round(v, 5) for v in row) for row in merged[0].tolist()}
    assert got == {tuple(round(v, 5) for v in row) for row in expected_tokens}
    # the hard mask reproduces the merge and each token goes to exactly one place
    assert torch.equal(mask.sum(-1), torch.ones(1, 11))
    torch.testing.assert_close(new_sizes, (mask * sizes[..., None]).sum(1))


def test_tome_conserves_size_and_fixes_identical_tokens():
    merger = ToMeMerge()
    merger.r = 5
    token = torch.randn(8)
    x = token.expand(2, 12, 8).clone()
    sizes = torch.rand(2, 12) + 0.5
    merged, new_sizes, _ = merger(x, sizes, torch.randn(2, 12, 4))
    torch.testing.assert_close(new_sizes.sum(1), sizes.sum(1))
    torch.testing.assert_close(merged, token.expand(2, 7, 8))
