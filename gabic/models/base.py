"""The contract of a learned codec in gabic: what the bitstream, checkpoints, training and
evaluation rely on, declared once.

A :class:`LearnedCodec` is a CompressAI ``CompressionModel`` (``forward``, ``compress``,
``decompress``, ``update``, ``aux_loss``) that also has

- :attr:`~LearnedCodec.name`: the architecture's registry name (``"gabic"``, ``"wacnn"``, ``"stf"``),
  written into ``.gabic`` files and checkpoints;
- :attr:`~LearnedCodec.config`: ``{"model": name, **hyper-parameters}``, enough to rebuild the
  model with :func:`gabic.models.build_model` and stored in gabic's checkpoints;
- :meth:`~LearnedCodec.identity`: an 8-byte digest of the configuration, without the entries that
  do not change what a stream decodes to (:attr:`~LearnedCodec.UNHASHED`, e.g. the attention
  backend). Two models with the same identity decode each other's streams; evaluation groups
  checkpoints into one curve by it and training resumes only into it;
- :meth:`~LearnedCodec.decoder_state`: the weights and buffers the decoder uses (everything but
  the analysis transforms, :attr:`~LearnedCodec.ENCODER_ONLY`), which ``.gabic`` files fingerprint;
- :meth:`~LearnedCodec.paper_config`: the constructor's defaults, the published model;
- :meth:`~LearnedCodec.upgrade_config`: fills in what a configuration written by an older gabic
  leaves out, with the value that gabic used then.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any, ClassVar

from compressai.models import CompressionModel

__all__ = ["LearnedCodec"]


class LearnedCodec(CompressionModel):
    """Base class of gabic's learned codecs (see the module docstring for the contract)."""

    #: Registry name of the architecture; subclasses set it.
    name: ClassVar[str] = ""
    #: Configuration entries outside the identity: they change no decoded number beyond float rounding.
    UNHASHED: ClassVar[frozenset[str]] = frozenset()
    #: Prefixes of the state-dict entries only the encoder uses (the analysis transforms); the
    #: decoder uses every other weight and buffer (see :meth:`decoder_state`).
    ENCODER_ONLY: ClassVar[tuple[str, ...]] = ()

    @property
    def config(self) -> dict[str, Any]:
        """``{"model": name, **hyper-parameters}``: enough to rebuild the model."""
        raise NotImplementedError

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

    def decoder_state(self) -> dict[str, Any]:
        """The state-dict entries (tensors) that ``decompress`` uses: all but :attr:`ENCODER_ONLY`."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(self.ENCODER_ONLY)}

    def identity(self) -> bytes:
        """:meth:`identity_of` this model's :attr:`config`."""
        return self.identity_of(self.config)

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
