"""Campaign bodies as Jinja templates: sandboxed, and bounded in what one template can ask for.

Only `{{ given_name }}` and `{{ family_name }}` are given to a body (and `{{ member_link }}`
to a campaign that asks for each recipient's own link). The sandbox
(`jinja2.sandbox`) keeps a template from reaching anything else (`x.__class__`, …);
on top of it this environment refuses the single operations that would explode
(`'x' * 10**9`, `10 ** 10 ** 10`, `range(10**6)`) before they run, and
`render_body` stops at `max_bytes` of output. What remains (a loop that runs
long, a filter that allocates much) is bounded by the render worker's time and
memory budget (render_worker.py), which is why bodies are only ever rendered
there, never in the service's event loop.

A failure says where and what, never echoing values: the rendered variables are
placeholders or a synthetic recipient (compose.py), never a member's data, and
messages of exceptions that could quote the template's own text are reduced to
their class.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

VARIABLES = ("given_name", "family_name")
# Given only to a campaign with a `member_link` (each recipient's own signed link).
MEMBER_LINK = "member_link"
# No newsletter loops over more; nested loops are stopped by the time budget.
MAX_RANGE = 10_000
# Integer results beyond this many bits are refused (10 ** 10 ** 10 would run for ever, in C).
MAX_INT_BITS = 4_096
_SEQUENCES = (str, list, tuple)


class TemplateProblemError(ValueError):
    """The campaign body cannot be rendered; says where (the template's line) and why."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.message = message


class _LimitError(Exception):
    """An operation the sandbox refuses because of its size."""


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise _LimitError(f"range() of {len(numbers)} numbers; at most {MAX_RANGE}")
    return numbers


class BodySandbox(SandboxedEnvironment):
    """The sandbox, with `*`, `**` and `+` checked before they run.

    Intercepting them also stops Jinja from folding constant expressions at
    compile time (`{{ 10 ** 10 ** 10 }}` would otherwise be computed by
    `from_string`)."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def __init__(self, max_bytes: int) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
        self.max_bytes = max_bytes
        self.globals = {"range": _bounded_range, "dict": dict, "namespace": self.globals["namespace"]}
        # `random` would make a body render differently at send time than when it was checked.
        self.filters = {name: f for name, f in self.filters.items() if name != "random"}

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "**":
            _check_power(left, right)
        else:
            _check_product_or_sum(op, left, right, self.max_bytes)
        return super().call_binop(context, op, left, right)


def _check_product_or_sum(op: str, left: Any, right: Any, limit: int) -> None:
    """Strings and lists repeated or joined, integers multiplied: checked before they are made."""
    if op == "*":
        for sequence, times in ((left, right), (right, left)):
            if isinstance(sequence, _SEQUENCES) and type(times) is int and len(sequence) * times > limit:
                raise _LimitError(f"a value over {limit} characters")
        if type(left) is int and type(right) is int and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _LimitError(f"a number over {MAX_INT_BITS} bits")
    elif isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES) and len(left) + len(right) > limit:
        raise _LimitError(f"a value over {limit} characters")


def _check_power(base: Any, exponent: Any) -> None:
    grows = type(base) is int and type(exponent) is int and exponent > 0 and abs(base) > 1
    if grows and math.log2(abs(base)) * exponent > MAX_INT_BITS:
        raise _LimitError(f"a number over {MAX_INT_BITS} bits")


@lru_cache(maxsize=8)
def _sandbox(max_bytes: int) -> BodySandbox:
    return BodySandbox(max_bytes)


@lru_cache(maxsize=64)
def compile_body(body_markdown: str, max_bytes: int) -> Template:
    """The campaign body as a template; a syntax error names its line."""
    try:
        return _sandbox(max_bytes).from_string(body_markdown)
    except TemplateSyntaxError as exc:
        raise TemplateProblemError(exc.lineno, exc.message or "template syntax error") from None
    except Exception as exc:  # RecursionError, MemoryError: a template too deep or too big to compile
        raise TemplateProblemError(None, explain(exc)) from None


def render_body(body_markdown: str, variables: dict[str, str], max_bytes: int) -> str:
    """The body rendered, at most `max_bytes` (UTF-8) of it; any failure as TemplateProblemError."""
    template = compile_body(body_markdown, max_bytes)
    out: list[str] = []
    size = 0
    chunks = template.generate(**variables)
    try:
        for chunk in chunks:
            size += len(chunk.encode())
            if size > max_bytes:
                line = _current_line(template, chunks)
                raise TemplateProblemError(line, f"the rendered text is over {max_bytes} bytes")
            out.append(chunk)
    except TemplateProblemError:
        raise
    except Exception as exc:  # Jinja has rewritten the traceback: its frames carry template lines
        raise TemplateProblemError(_line_of(exc), explain(exc)) from None
    return "".join(out)


def explain(exc: BaseException) -> str:
    """What went wrong, in words that cannot quote the template's text or a value."""
    if isinstance(exc, UndefinedError):
        return f"{exc.message}; available: {', '.join(VARIABLES)}"
    if isinstance(exc, SecurityError | _LimitError):
        return str(exc)  # names an attribute and a type, or a size
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, RecursionError):
        return "the template recurses too deeply"
    if isinstance(exc, MemoryError):
        return "the template needs more memory than rendering is allowed"
    if isinstance(exc, OverflowError):
        return "a number too large"
    # e.g. ValueError("invalid literal for int() with base 10: '<text of the template>'")
    return f"the template failed when rendered ({type(exc).__name__})"


def raw_line_of(exc: BaseException) -> int | None:
    """The template line of an exception Jinja did not rewrite (one that is not an `Exception`)."""
    tb, line = exc.__traceback__, None
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if isinstance(template, Template):
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line


def _line_of(exc: Exception) -> int | None:
    # Jinja reports the template line in the traceback of the rendering frame.
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _current_line(template: Template, chunks: Iterator[str]) -> int | None:
    """Where a suspended render is: the innermost generator frame of the template's code."""
    frame_line = None
    gen: Any = chunks
    while gen is not None:
        frame = getattr(gen, "gi_frame", None)
        if frame is not None and frame.f_code.co_filename == "<template>":
            frame_line = frame.f_lineno
        gen = getattr(gen, "gi_yieldfrom", None)
    return template.get_corresponding_lineno(frame_line) if frame_line else None
