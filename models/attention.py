"""Self-attention over a token set whose tokens may stand for several patches.

timm's ``Attention.forward`` cannot add a per-key bias and cannot hand back its keys, both of which
token merging needs (proportional attention adds log(size); ToMe matches tokens by their keys). So
the merged blocks run attention through :func:`attention_forward`, which uses the *same* timm
module and weights and reproduces timm's result exactly when there is no bias.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

# Per thread (each thread starts from the default): the app counts GMACs in a worker thread while
# the line infers in another, and one thread's count must not change the other's attention path.
_FUSED: ContextVar[bool] = ContextVar("ltm_fused_attention", default=True)


@contextlib.contextmanager
def unfused_attention() -> Iterator[None]:
    """Run attention as explicit matmuls, so FLOP counters see (and count) the attention product.

    Only in the calling thread (and context): others keep the fused path; nested uses restore in order.
    """
    token = _FUSED.set(False)
    try:
        yield
    finally:
        _FUSED.reset(token)


def fused_attention_enabled() -> bool:
    """Whether attention in this thread runs PyTorch's fused kernel (False inside a FLOP count)."""
    return _FUSED.get()


def size_bias(sizes: torch.Tensor | None, num_prefix: int) -> torch.Tensor | None:
    """Float attention bias ``log(size)`` per key, zero for prefix tokens (proportional attention).

    A float mask keeps PyTorch's fused ``scaled_dot_product_attention`` path usable.
    """
    if sizes is None:
        return None
    log_sizes = sizes.clamp_min(1e-6).log()
    if num_prefix:
        log_sizes = F.pad(log_sizes, (num_prefix, 0))
    return log_sizes[:, None, None, :]


def attention_forward(
    attn: nn.Module, x: torch.Tensor, bias: torch.Tensor | None = None, want_keys: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """timm ``Attention`` with an optional additive bias; optionally also the head-mean keys."""
    batch, tokens, _ = x.shape
    num_heads = attn.num_heads
    head_dim = attn.head_dim
    qkv = attn.qkv(x).reshape(batch, tokens, 3, num_heads, head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    gate = attn.gate(x).sigmoid() if getattr(attn, "gate", None) is not None else None
    drop = attn.attn_drop.p if attn.training else 0.0
    if _FUSED.get():
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=drop)
    else:
        logits = (q * attn.scale) @ k.transpose(-2, -1)
        if bias is not None:
            logits = logits + bias
        out = attn.attn_drop(logits.softmax(dim=-1)) @ v
    out = out.transpose(1, 2).contiguous().reshape(batch, tokens, num_heads * head_dim)
    out = attn.norm(out)
    if gate is not None:
        out = out * gate
    out = attn.proj_drop(attn.proj(out))
    keys = k.mean(dim=1) if want_keys else None
    return out, keys
