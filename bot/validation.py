"""One line for a pydantic ValidationError, as the 400 answers and error lines show it."""

from __future__ import annotations

from pydantic import ValidationError


def first_problem(exc: ValidationError) -> str:
    """`where: what` for the first error (the rest are usually consequences of it)."""
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}"
