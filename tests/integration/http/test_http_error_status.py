"""Core errors carry no HTTP status: the edge's table gives each one the spec's code."""

from __future__ import annotations

import inspect

from memoryd.adapters.http._errors import STATUS, status_of
from memoryd.core import errors
from memoryd.core.errors import FieldError


def test_every_core_error_has_a_status_at_the_edge() -> None:
    classes = [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, errors.MemorydError)
    ]
    assert set(classes) <= set(STATUS), set(classes) - set(STATUS)
    assert not any(hasattr(c, "status") for c in classes)


def test_statuses_are_the_specs() -> None:
    assert status_of(errors.ValidationFailed([FieldError("q", "bad")])) == 400
    assert status_of(errors.InvalidPrompt()) == 400
    assert status_of(errors.Unauthorized()) == 401
    assert status_of(errors.QuotaExceeded()) == 402
    assert status_of(errors.NotFound()) == 404
    assert status_of(errors.PayloadTooLarge()) == 413
    assert status_of(errors.StoreUnavailable()) == 503
    assert status_of(errors.ConfigurationError()) == 500


def test_a_subclass_takes_its_bases_status() -> None:
    class ThreadGone(errors.NotFound):
        pass

    assert status_of(ThreadGone()) == 404
