"""The contract of a learned codec in gabic: everything the rest of gabic relies on, declared once.

A :class:`LearnedCodec` is a CompressAI ``CompressionModel`` (``forward``, ``compress``,
``decompress``, ``update``, ``aux_loss``) that also says

- :attr:`~LearnedCodec.name`: the architecture's registry name (``"gabic"``, ``"mbt2018-mean"``),
  written into ``.gabic`` files and checkpoints; :attr:`~LearnedCodec.label`: how figures name it;
- :attr:`~LearnedCodec.config` (abstract): ``{"model": name, **hyper-parameters}``, enough to
  rebuild the model with :func:`gabic.models.build_model`, stored in gabic's checkpoints;
- :attr:`~LearnedCodec.OPTIONS`: the hyper-parameters a user may set (:class:`Option`: at build
  time, and those marked ``inference`` on a loaded checkpoint too). The command line offers them
  (``--knn``), and an option an architecture does not declare is refused naming both;
- :meth:`~LearnedCodec.recognise` (abstract): the configuration that a state dict of this
  architecture without one (a released or a CompressAI zoo file) reveals through its keys and
  shapes, or None;
- :meth:`~LearnedCodec.forward_entropy` (abstract): the forward pass plus the entropy model's
  parameters on the way (latent, symbols, means, scales), for the analyses of bits;
- :meth:`~LearnedCodec.identity`: an 8-byte digest of the configuration, without the entries that
  do not change what a stream decodes to (:attr:`~LearnedCodec.UNHASHED`, e.g. the attention
  backend). Two models with the same identity decode each other's streams; evaluation groups
  checkpoints into one curve by it and training resumes only into it;
- :meth:`~LearnedCodec.stream_hint`: what to tell the user when a stream was written with another
  value of an inference option (how to load the checkpoint to decode it);
- :meth:`~LearnedCodec.decoder_state`: the weights and buffers the decoder uses (everything but
  the analysis transforms, :attr:`~LearnedCodec.ENCODER_ONLY`), which ``.gabic`` files fingerprint;
- :meth:`~LearnedCodec.paper_config` and :meth:`~LearnedCodec.upgrade_config`: the published
  model, and what a configuration written by an older gabic leaves out.

``compress(x)`` codes one image ``(1, 3, H, W)`` (H, W multiples of 64) into ``{"strings": [y
strings, z strings], "shape": z's (h, w)}`` and may add ``"symbols_crc"``, the CRC-32 of the
latent's symbols; ``decompress(strings, shape)`` gives ``{"x_hat"}`` and, when ``compress``
reports the checksum, the one of the symbols it decoded, which ``.gabic`` files compare.

An architecture is one module under :mod:`gabic.models` whose class is decorated with
:func:`gabic.models.register`; a package of one's own registers its module through the
entry-point group ``gabic.models`` (see the README).
"""

from __future__ import annotations

import abc
import hashlib
import inspect
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from compressai.models import CompressionModel

from gabic.checks import is_int, is_number

__all__ = ["LearnedCodec", "Option"]


@dataclass(frozen=True)
class Option:
    """A hyper-parameter of an architecture that a user may set.

    Attributes:
        name: the constructor's argument and the configuration's entry (``"knn"``).
        type: ``int``, ``float``, ``str`` or ``bool``.
        help: one line for ``--help`` (``"neighbours per node (paper 9)"``).
        choices: the values a ``str`` option takes, None for any.
        inference: True when it may change on a loaded checkpoint (same weights, e.g. GABIC's k);
            False when it is fixed by the weights (sizes) and only set when a model is built.
    """

    name: str
    type: type
    help: str
    choices: tuple[str, ...] | None = None
    inference: bool = False

    @property
    def flag(self) -> str:
        """The command-line flag: ``--knn``, ``--knn-rule``, ``--num-slices``, ``--N``."""
        return "--" + self.name.replace("_", "-")


def _is_a(value: Any, kind: type) -> bool:
    """Whether ``value`` is of an option's type: an integer (NumPy's too, not a bool) for ``int``, a
    real number for ``float``, an instance otherwise."""
    if kind is int:
        return is_int(value)
    if kind is float:
        return is_number(value)
    return isinstance(value, kind)


class LearnedCodec(CompressionModel, abc.ABC):
    """Base class of gabic's learned codecs (see the module docstring for the contract)."""

    #: Registry name of the architecture; subclasses set it.
    name: ClassVar[str] = ""
    #: How figures and tables name the architecture (default: the name).
    label: ClassVar[str] = ""
    #: The hyper-parameters a user may set (see :class:`Option`).
    OPTIONS: ClassVar[tuple[Option, ...]] = ()
    #: Configuration entries outside the identity: they change no decoded number beyond float rounding.
    UNHASHED: ClassVar[frozenset[str]] = frozenset()
    #: Prefixes of the state-dict entries only the encoder uses (the analysis transforms); the
    #: decoder uses every other weight and buffer (see :meth:`decoder_state`).
    ENCODER_ONLY: ClassVar[tuple[str, ...]] = ()
    #: Groups of y's channels the entropy model codes one after the other, each conditioned on those
    #: before (the channel-wise context's slices); 1 when y is coded as one group.
    num_slices: int = 1

    # ------------------------------------------------------------------ what an architecture must say
    @property
    @abc.abstractmethod
    def config(self) -> dict[str, Any]:
        """``{"model": name, **hyper-parameters}``: enough to rebuild the model."""

    @classmethod
    @abc.abstractmethod
    def recognise(cls, state_dict: dict[str, torch.Tensor]) -> dict[str, Any] | None:
        """The configuration a state dict of this architecture reveals through its keys and shapes
        (``{"model": name, ...}``; what keys cannot tell takes the paper's value), None when the
        state dict is not one of this architecture."""

    @abc.abstractmethod
    def forward_entropy(self, x: torch.Tensor) -> dict[str, Any]:
        """:meth:`forward` (the same pass, the same numbers) plus what the entropy model used.

        Returns ``{"x_hat", "likelihoods"}`` as ``forward`` and ``"y"`` (the latent), ``"y_hat"``
        (the rounded latent the coder codes, before any refinement), ``"means"``, ``"scales"`` (the
        Gaussian's, after its lower bound), all ``(B, M, h, w)``, and ``"z_hat"``.
        """

    # ------------------------------------------------------------------ options
    @classmethod
    def options(cls, inference: bool = False) -> dict[str, Option]:
        """The :attr:`OPTIONS` by name; with ``inference`` only those a loaded checkpoint may change."""
        return {o.name: o for o in cls.OPTIONS if o.inference or not inference}

    @classmethod
    def check_options(cls, options: dict[str, Any], inference: bool = False) -> dict[str, Any]:
        """``options`` with their values as plain Python values (a NumPy integer as ``int``), after
        refusing, in one line naming the model and the option, an option this architecture does not
        take (with ``inference``: does not take on a loaded checkpoint), or a value of the wrong type
        or outside its choices. ValueError."""
        takes = cls.options(inference)
        checked = {}
        for key, value in options.items():
            if key not in takes:
                offered = ", ".join(takes) or "none"
                when = " on a loaded checkpoint" if inference and key in cls.options() else ""
                raise ValueError(f"{key}: not an option of the {cls.name} model{when} (its options: {offered})")
            opt = takes[key]
            if not _is_a(value, opt.type):
                raise ValueError(f"{key}: the {cls.name} model expects {opt.type.__name__}, got {value!r}")
            if opt.choices is not None and value not in opt.choices:
                raise ValueError(f"{key}: the {cls.name} model takes one of {', '.join(opt.choices)}, got {value!r}")
            checked[key] = opt.type(value)
        return checked

    # ------------------------------------------------------------------ identity and decoding
    @classmethod
    def identity_of(cls, config: dict[str, Any]) -> bytes:
        """8-byte digest of a configuration of this architecture, :attr:`UNHASHED` entries left out.

        The digest is SHA-256 over the sorted JSON of the remaining entries, so the order of the
        entries does not matter and a configuration written before an entry existed keeps its
        digest when the entry is dropped by :meth:`_identity_entries`.
        """
        entries = cls._identity_entries(config)
        canon = json.dumps(entries, sort_keys=True, default=str)
        return hashlib.sha256(canon.encode()).digest()[:8]

    @classmethod
    def _identity_entries(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The entries the identity covers (subclasses may drop more, see GABIC)."""
        return {k: v for k, v in config.items() if k not in cls.UNHASHED}

    def identity(self) -> bytes:
        """:meth:`identity_of` this model's :attr:`config`."""
        return self.identity_of(self.config)

    @classmethod
    def stream_hint(cls, config: dict[str, Any], identity: bytes) -> str:
        """When a stream of identity ``identity`` was written by this architecture with another value
        of one inference option than ``config`` has, how to decode it (``"; it was written with
        knn_rule='self-excluded': load the checkpoint with ..."``); else ``""``.

        Tries each other choice of each inference option that has choices."""
        for opt in cls.options(inference=True).values():
            for value in opt.choices or ():
                if opt.name in config and value != config[opt.name] and cls.identity_of({**config, opt.name: value}) == identity:
                    return (
                        f"; it was written with {opt.name}={value!r}: load the checkpoint with "
                        f"{opt.name}={value!r} ({opt.flag} {value})"
                    )
        return ""

    def decoder_state(self) -> dict[str, Any]:
        """The state-dict entries (tensors) that ``decompress`` uses: all but :attr:`ENCODER_ONLY`."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(self.ENCODER_ONLY)}

    # ------------------------------------------------------------------ configurations
    @classmethod
    def paper_config(cls) -> dict[str, Any]:
        """The constructor's defaults (the published model), ``{"model": name, ...}``."""
        params = inspect.signature(cls.__init__).parameters
        defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
        return {"model": cls.name, **defaults}

    @classmethod
    def upgrade_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """A configuration read from a gabic checkpoint, with the entries that older gabic versions
        did not write filled in as they behaved then (default: unchanged, a copy)."""
        return dict(config)

    @classmethod
    def display_label(cls) -> str:
        """:attr:`label`, or the name where the class sets none."""
        return cls.label or cls.name
