"""Ops: one class per kind of operation, each owning its rule (push affine states, split
regions, codes at points), and the registry that maps a model's modules and calls to them.

The built-in ops are registered here, explicitly, in :data:`REGISTRY`.
"""

from .affine import ChannelAffineOp, ConvOp, FunctionOp, LinearOp, ModuleLinearOp
from ..errors import TrainingMode, Unsupported
from .base import AffineOp, Live, Op, Split, SplitContext, SplitOp, pack_bits
from .elementwise import ElementwiseOp, abs_op, clamp_op, leaky_relu_op, relu_op
from .functions import SMOOTH_NAMES, register_function_ops
from .maxtype import DimMaxOp, MaxOp, PoolMaxOp
from .modules import register_module_ops
from .registry import OpFactory, OpRegistry

REGISTRY = OpRegistry()
register_module_ops(REGISTRY)
register_function_ops(REGISTRY)
register_op = REGISTRY.register
unregister_op = REGISTRY.unregister

__all__ = [
    "REGISTRY", "SMOOTH_NAMES", "AffineOp", "ChannelAffineOp", "ConvOp", "DimMaxOp", "ElementwiseOp", "FunctionOp",
    "LinearOp", "Live", "MaxOp", "ModuleLinearOp", "Op", "OpFactory", "OpRegistry", "PoolMaxOp", "Split",
    "SplitContext", "SplitOp", "TrainingMode", "Unsupported", "abs_op", "clamp_op", "leaky_relu_op", "pack_bits",
    "register_op", "relu_op", "unregister_op",
]
