"""One piece of advice from the self-check: what is wrong, how bad it is, and how to fix it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Finding(BaseModel):
    level: Literal["error", "warning", "info"] = Field(description="error: the upload would fail or lose points")
    code: str = Field(description="A short stable name, e.g. gpu-tensors, class-order")
    message: str
    hint: str = Field(default="", description="How to fix it, with code to copy where that helps")
    points_lost: float | None = Field(
        default=None, description="Exercise 1 points the submission loses as it stands that the fix would win back"
    )
    fix: str = Field(default="", description="The fix in a few words, for the verdict line")
