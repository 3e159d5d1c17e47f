"""Registered recipe stages and the loop that runs them (see distill.stages.base)."""

from distill.stages import distill, prune, quantize, teacher  # noqa: F401  (registers the stages)
from distill.stages.base import STAGES, RunContext, RunOptions, RunSummary, Stage, plan_stages
from distill.stages.pipeline import run_recipe

__all__ = ["STAGES", "RunContext", "RunOptions", "RunSummary", "Stage", "plan_stages", "run_recipe"]
