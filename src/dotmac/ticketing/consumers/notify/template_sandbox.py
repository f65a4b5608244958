"""Rendering tenant-written templates in child processes, within a budget.

Jinja's sandbox keeps a template away from Python's internals, but not
from the machine: ``{% for i in range(10**5) %}{% for j in range(10**5)
%}{% endfor %}{% endfor %}`` loops for hours, and ``{{ 'x' * 10**10 }}``
or ``{{ 'x'|center(10**10) }}`` asks for gigabytes in one C call, which
nothing in the same process can interrupt (Jinja even folds such constant
expressions at compile time). So a tenant's template is compiled and
rendered in a worker process with a memory limit, and a render that takes
longer than its time budget is ended by killing the worker (pebble starts
a new one). The output is counted as it is produced and the render stops
once it passes the size budget.

The caller gets the text or an exception (:class:`TemplateRenderFailed`)
and falls back to the built-in template; built-in templates are trusted
and render in the caller's process.
"""

from __future__ import annotations

import multiprocessing
import resource
import threading
from collections.abc import Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Template
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pebble import ProcessExpired, ProcessPool

# Two workers: one hostile template being timed out does not hold up the
# next tenant's render for its whole budget.
WORKERS = 2
# Address space of a worker. An interpreter with Jinja loaded maps about
# 100 MiB; the rest is room for a render.
MEMORY_LIMIT_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class RenderBudget:
    """What one tenant template may use to render one part."""

    seconds: float = 1.0
    max_chars: int = 100_000


class TemplateRenderFailed(Exception):
    """A tenant template raised, did not finish in time, or grew too large."""


class OutputTooLarge(Exception):
    """Raised in the worker: the output passed the size budget."""


class TemplateSandbox:
    """A pool of worker processes rendering untrusted templates.

    The pool starts with the first render (a deployment whose tenants
    override nothing starts no process); ``close`` ends it.
    """

    def __init__(self, budget: RenderBudget | None = None) -> None:
        self.budget = budget or RenderBudget()
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()

    def render(self, source: str, context: Mapping[str, Any], *, html: bool) -> str:
        """The rendered text; raises :class:`TemplateRenderFailed` otherwise."""
        try:
            future = self._workers().schedule(
                render_untrusted,
                args=(source, dict(context), html, self.budget.max_chars),
                timeout=self.budget.seconds,
            )
            text: str = future.result()
        except FutureTimeout as error:
            raise TemplateRenderFailed(
                f"did not finish within {self.budget.seconds:g} s"
            ) from error
        except ProcessExpired as error:
            raise TemplateRenderFailed(
                f"the render process died (exit code {error.exitcode})"
            ) from error
        except OutputTooLarge as error:
            raise TemplateRenderFailed(
                f"output exceeds {self.budget.max_chars} characters"
            ) from error
        except Exception as error:  # whatever the template (or the pool) raised
            raise TemplateRenderFailed(f"{type(error).__name__}: {error}") from error
        return text

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()  # type: ignore[no-untyped-call]
            pool.join()

    def _workers(self) -> ProcessPool:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPool(
                    max_workers=WORKERS,
                    initializer=_limit_memory,
                    initargs=(MEMORY_LIMIT_BYTES,),
                    # Not fork: the notifier has threads (and, in
                    # `ticketing dev`, the whole service) that a forked
                    # child would inherit mid-operation.
                    context=multiprocessing.get_context("spawn"),
                )
            return self._pool


# ----------------------------------------------------------------------
# In the worker process


def _limit_memory(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def render_untrusted(
    source: str, context: dict[str, Any], html: bool, max_chars: int
) -> str:
    """Compile (cached) and render ``source``, stopping past ``max_chars``."""
    template = _compiled(source, html)
    chunks: list[str] = []
    size = 0
    for chunk in template.generate(context):
        size += len(chunk)
        if size > max_chars:
            raise OutputTooLarge(size)
        chunks.append(chunk)
    return "".join(chunks)


@lru_cache(maxsize=256)
def _compiled(source: str, html: bool) -> Template:
    return _environment(html).from_string(source)


@lru_cache(maxsize=2)
def _environment(html: bool) -> ImmutableSandboxedEnvironment:
    # The same sandbox as the built-in templates (immutable: no
    # list.append), HTML autoescaped.
    return ImmutableSandboxedEnvironment(autoescape=html, keep_trailing_newline=False)
