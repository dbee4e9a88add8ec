"""How a claimed job's operation is executed. In-process today; a Ray executor implements the same method."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

from zhike.core.context import RunContext
from zhike.core.registry import OperationDef


class Executor(Protocol):
    def execute(self, op: OperationDef, ctx: RunContext, params: BaseModel) -> BaseModel: ...


class InProcessExecutor:
    """Runs the operation in the calling thread (the worker thread of this process)."""

    def execute(self, op: OperationDef, ctx: RunContext, params: BaseModel) -> BaseModel:
        return op.run(ctx, params)
