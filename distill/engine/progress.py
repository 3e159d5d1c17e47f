"""A rich progress bar for training: step, loss terms, lr, it/s and ETA."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainProgress:
    def __init__(self, total: int, start: int, enabled: bool, console: Console | None = None, every: int = 10) -> None:
        self.enabled, self.every, self.total = enabled, every, total
        self.console = console or Console(stderr=True)
        self.plain = not self.console.is_terminal  # logs and CI: a plain line every `every` steps
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[terms]}"),
            TextColumn("lr {task.fields[lr]}"),
            TextColumn("{task.fields[speed]} it/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not enabled or self.plain,
        )
        self.task = self.progress.add_task("train", total=total, completed=start, terms="", lr="-", speed="-")

    def __enter__(self) -> TrainProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def update(self, step: int, terms: dict[str, float], lr: float) -> None:
        if not self.enabled:
            return
        text = " ".join(f"{name} {value:.4g}" for name, value in terms.items())
        if self.plain:
            if step % self.every == 0 or step == self.total:
                elapsed = self.progress.tasks[0].elapsed or 0.0
                self.console.print(f"step {step}/{self.total}  {text}  lr {lr:.2e}  {elapsed:.0f} s", highlight=False)
            self.progress.update(self.task, completed=step)
            return
        speed = self.progress.tasks[0].speed
        self.progress.update(self.task, completed=step, terms=text, lr=f"{lr:.2e}", speed=f"{speed:.2f}" if speed else "-")

    def note(self, text: str) -> None:
        if self.enabled:
            self.progress.console.print(text)
