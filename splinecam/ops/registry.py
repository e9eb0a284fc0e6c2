"""The registry that maps module types, functions and tensor methods to op factories."""

from __future__ import annotations

import types
from typing import Callable

from torch import nn

from .base import Op

__all__ = ["OpFactory", "OpRegistry"]

OpFactory = Callable[..., "Op | None"]


class OpRegistry:
    """Module types, functions and method names -> factories of ops.

    Module types are looked up along the module's MRO, so registering a base
    class covers its subclasses.  Registering a target again stacks the new
    factory on the old one; :meth:`unregister` takes the newest off, so a user's
    op for a built-in type gives way to the built-in one when unregistered.
    """

    def __init__(self):
        self._modules: dict[type, list[OpFactory]] = {}
        self._calls: dict[object, list[OpFactory]] = {}
        self.version = 0  # counts the changes (traced graphs made before a change are stale)

    def register(self, target, factory: OpFactory) -> None:
        """Teach splinecam a module type, a function or a tensor method.

        - ``register_op(MyModule, factory)``: ``factory(module)`` returns an
          :class:`Op` (or None for an identity); the module is already a float64 copy.
        - ``register_op(my_function, factory)`` (an fx ``call_function`` target) or
          ``register_op("method_name", factory)`` (an fx ``call_method`` target, e.g.
          ``x.method_name(...)``): ``factory(*args, **kwargs)`` gets the call's
          arguments with every activation replaced by a :class:`Live` (its
          ``.example`` is a small batch of real values); it returns an Op whose
          ``forward`` takes the activations in the order they appear in the arguments.

        Functions and modules registered this way are not traced into.
        """
        if isinstance(target, type):
            self._modules.setdefault(target, []).append(factory)
        elif isinstance(target, str) or callable(target):
            self._calls.setdefault(target, []).append(factory)
        else:
            raise TypeError(f"register_op needs a module type, a function or a method name, got {target!r}.")
        self.version += 1

    def unregister(self, target) -> None:
        """Forget the newest :meth:`register` of ``target`` (KeyError if nothing); an older
        registration of it (e.g. the built-in one) applies again."""
        table = self._modules if isinstance(target, type) else self._calls
        if target not in table:
            raise KeyError(f"{target!r} is not registered.")
        table[target].pop()
        if not table[target]:
            del table[target]
        self.version += 1

    def for_module(self, module: nn.Module) -> OpFactory | None:
        """The factory of the nearest registered class in the module's MRO, or None."""
        return self.for_type(type(module))

    def for_type(self, module_type: type) -> OpFactory | None:
        """The factory of the nearest registered class in the MRO of ``module_type``, or None."""
        for cls in module_type.__mro__:
            if cls in self._modules:
                return self._modules[cls][-1]
        return None

    def for_call(self, target) -> OpFactory | None:
        """The factory of a function or method name, or None."""
        try:
            factories = self._calls.get(target)
        except TypeError:  # unhashable target
            return None
        return factories[-1] if factories else None

    def targets(self) -> list:
        """Every registered module type, function and method name (each once)."""
        return list(self._modules) + list(self._calls)

    def plain_functions(self) -> tuple[types.FunctionType, ...]:
        """The registered plain Python functions (the tracer must not trace into them)."""
        return tuple(f for f in self._calls if isinstance(f, types.FunctionType))
