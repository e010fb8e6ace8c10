"""Affine subtraction layers (in1 − in2)."""
from __future__ import annotations

from .base import AffineKind, register_affine_kind
from .litert_common import litert_binary


@register_affine_kind("Subtraction")
class AffineSubtractionKind(AffineKind):
    """Affine subtraction (TFLite SUB: sub.cc, reference_ops::Sub / SubElementwise, XNNPACK qs8
    vadd with a negated second scale). Data: optional `activation`. Formulas by recipe "compute"."""

    COMPUTE = {"litert": litert_binary("sub")}

