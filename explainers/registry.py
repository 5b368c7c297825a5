"""The registry of attribution methods: each method is a function registered once with what it is and takes.

    @register("saliency", "Saliency (gradient)", "gradient", batched=saliency_batch)
    def saliency(bundle, x, target, progress=None, **options) -> MethodResult: ...

`batched(bundle, xs, target, **options) -> (N, ...) tensor` is the method's form on a batch of inputs, declared
here so that wrappers (SmoothGrad) can push many inputs through one forward/backward.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from .base import BadRequest, MethodInfo, MethodResult, short_repr

MethodFn = Callable[..., MethodResult]


class Entry(NamedTuple):
    info: MethodInfo
    run: MethodFn
    batched: Callable | None


_REGISTRY: dict[str, Entry] = {}


def register(id: str, title: str, family: str, *, options: dict | None = None, needs_classifier: bool = False,
             needs_layer: bool = False, smoothable: bool | None = None, batched: Callable | None = None):
    """Decorator adding a method function to the registry under `id` (gradient and path methods are smoothable
    unless told otherwise). The batched form is also reachable as `fn.batched`."""
    info = MethodInfo(id, title, family, dict(options or {}), needs_classifier, needs_layer,
                      family in ("gradient", "path") if smoothable is None else smoothable)

    def decorate(fn: MethodFn) -> MethodFn:
        _REGISTRY[id] = Entry(info, fn, batched)
        fn.batched = batched
        return fn
    return decorate


def list_methods() -> list[MethodInfo]:
    return [entry.info for entry in _REGISTRY.values()]


class UnknownMethod(BadRequest, KeyError):
    """No method has this id (a KeyError too, as a registry lookup)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def method_entry(method: str) -> Entry:
    if not isinstance(method, str) or method not in _REGISTRY:
        raise UnknownMethod(f"Unknown method {short_repr(method)}. Known: {', '.join(_REGISTRY)}")
    return _REGISTRY[method]


def method_info(method: str) -> MethodInfo:
    return method_entry(method).info
