"""CompressAI's baselines of the GABIC paper's RD figure, as gabic architectures, on CompressAI's own classes.

- ``"mbt2018-mean"``: the mean-scale hyperprior of Minnen, Ballé and Toderici (NeurIPS 2018),
  :class:`compressai.models.MeanScaleHyperprior`; the zoo's qualities 1-4 have N=128, M=192 and
  5-8 N=192, M=320.
- ``"cheng2020-anchor"``: Cheng, Sun, Takeuchi and Katto (CVPR 2020) without attention, a joint
  autoregressive and hierarchical prior, :class:`compressai.models.Cheng2020Anchor`; qualities
  1-3 have N=128 and 4-6 N=192. Its entropy coder runs position by position on the CPU: coding
  a Kodak image takes seconds.

Their state dicts are the zoo's (``compressai.zoo`` saves them bare: ``mbt2018-mean-3-723404a8.pth.tar``),
recognised by their keys and shapes; the zoo's older key names are renamed as the zoo itself does
(:func:`compressai.zoo.pretrained.load_pretrained`). Their ``compress`` reports no checksum of the
latent's symbols, so their ``.gabic`` files carry none (see :mod:`gabic.bitstream`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from compressai.models import Cheng2020Anchor as _Cheng2020Anchor
from compressai.models import MeanScaleHyperprior
from compressai.ops import quantize_ste
from compressai.zoo.pretrained import load_pretrained
from torch import Tensor

from gabic.models.base import LearnedCodec, Option
from gabic.models.registry import register

__all__ = ["Cheng2020Anchor", "Mbt2018Mean"]


class _Zoo(LearnedCodec):
    """What the zoo's models share in gabic: the zoo's key names, the analysis transforms."""

    ENCODER_ONLY = ("g_a.", "h_a.")

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """CompressAI's loading, after the zoo's own renaming of older key names."""
        return super().load_state_dict(load_pretrained(dict(state_dict)), strict=strict)

    def _entropy_pass(self, y: Tensor, scales: Tensor, means: Tensor, y_hat: Tensor, z_hat: Tensor, z_lik: Tensor) -> dict:
        """The dict of :meth:`forward_entropy` from the pieces of a forward pass."""
        gc = self.gaussian_conditional
        _, y_lik = gc(y, scales, means=means)
        return {
            "x_hat": self.g_s(y_hat),
            "likelihoods": {"y": y_lik, "z": z_lik},
            "y": y,
            "y_hat": y_hat,
            "means": means,
            "scales": gc.lower_bound_scale(scales),
            "z_hat": z_hat,
        }


@register
class Mbt2018Mean(MeanScaleHyperprior, _Zoo):
    """The mean-scale hyperprior (Minnen et al. 2018) as CompressAI builds it.

    Args:
        N: channels of the transforms and of z (zoo qualities 5-8: 192; 1-4: 128).
        M: channels of y (5-8: 320; 1-4: 192).
    """

    name = "mbt2018-mean"
    label = "mbt2018-mean"
    OPTIONS = (
        Option("N", int, "transform channels (zoo 192 at qualities 5-8, 128 at 1-4)"),
        Option("M", int, "latent channels (zoo 320 at qualities 5-8, 192 at 1-4)"),
    )

    def __init__(self, N: int = 192, M: int = 320):
        super().__init__(N=N, M=M)

    @property
    def config(self) -> dict[str, Any]:
        return {"model": self.name, "N": self.N, "M": self.M}

    @classmethod
    def recognise(cls, state_dict: dict[str, Tensor]) -> dict[str, Any] | None:
        """N and M from ``g_a``'s first and last convolutions when the hyper-synthesis ends in 2M
        channels (means and scales) and there is no context model, else None."""
        sd = state_dict
        if any(k not in sd for k in ("g_a.0.weight", "g_a.6.weight", "h_s.4.weight")) or "context_prediction.weight" in sd:
            return None
        M = sd["g_a.6.weight"].shape[0]
        if "g_a.7.weight" in sd or sd["h_s.4.weight"].shape[0] != 2 * M:
            return None
        return {"model": cls.name, "N": sd["g_a.0.weight"].shape[0], "M": M}

    def forward_entropy(self, x: Tensor) -> dict[str, Any]:
        """:meth:`forward` (the same modules, the same numbers in eval mode) with y, the symbols
        ``round(y - means) + means`` the coder codes, the means, the scales and z_hat."""
        y = self.g_a(x)
        z_hat, z_lik = self.entropy_bottleneck(self.h_a(y))
        scales, means = self.h_s(z_hat).chunk(2, 1)
        y_hat = quantize_ste(y - means) + means
        return self._entropy_pass(y, scales, means, y_hat, z_hat, z_lik)


@register
class Cheng2020Anchor(_Cheng2020Anchor, _Zoo):
    """Cheng et al. 2020 (anchor: no attention modules) as CompressAI builds it.

    Args:
        N: channels of the transforms, of y and of z (zoo qualities 4-6: 192; 1-3: 128).
    """

    name = "cheng2020-anchor"
    label = "cheng2020-anchor"
    OPTIONS = (Option("N", int, "transform channels (y and z have as many; zoo 192 at qualities 4-6, 128 at 1-3)"),)

    def __init__(self, N: int = 192):
        super().__init__(N=N)

    @property
    def config(self) -> dict[str, Any]:
        return {"model": self.name, "N": self.N}

    @classmethod
    def recognise(cls, state_dict: dict[str, Tensor]) -> dict[str, Any] | None:
        """N from the first residual block when there is a context model and no attention module, else None."""
        sd = state_dict
        if "g_a.0.conv1.weight" not in sd or "context_prediction.weight" not in sd:
            return None
        if any(".conv_a." in k or ".conv_b." in k for k in sd):  # cheng2020-attn's attention blocks
            return None
        return {"model": cls.name, "N": sd["g_a.0.conv1.weight"].shape[0]}

    def forward_entropy(self, x: Tensor) -> dict[str, Any]:
        """:meth:`forward` (the same modules, the same numbers in eval mode) with y, the rounded
        latent the forward pass uses (``round(y)``: the context model sees it; the coder codes
        ``round(y - means) + means`` position by position), the means, the scales and z_hat."""
        y = self.g_a(x)
        z_hat, z_lik = self.entropy_bottleneck(self.h_a(y))
        params = self.h_s(z_hat)
        y_hat = quantize_ste(y)
        ctx = self.context_prediction(y_hat)
        scales, means = self.entropy_parameters(torch.cat((params, ctx), dim=1)).chunk(2, 1)
        return self._entropy_pass(y, scales, means, y_hat, z_hat, z_lik)
