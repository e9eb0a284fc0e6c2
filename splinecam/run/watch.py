"""What every run over a domain watches: its progress (regions finished, share of the domain's
measure: a slice's area, a path's length), its time limit and its region limit, with the errors
that end it early."""

from __future__ import annotations

import sys
import time

from ..errors import RegionLimitError, TimeLimitError

__all__ = ["LOG_EVERY", "Watch", "progress_bar"]


LOG_EVERY = 10.0  # seconds between progress lines where stderr is not a terminal (a log file)
BAR_DELAY = 2.0  # seconds into a run before its bar shows, where ``progress`` is None


class ProgressLines:
    """Progress for a log: where stderr is not a terminal, a plain line (no carriage returns)
    every :data:`LOG_EVERY` seconds (and one at once if ``at_once``), and a last one at
    :meth:`close` if any was written.  The
    part of tqdm's interface that splinecam uses: ``n``, ``total``, ``update``,
    ``set_postfix_str``, ``close``.  unit: "area" (n and total are measures of the domain,
    called ``share``, e.g. "the slice's area") or a word for n."""

    def __init__(self, total: float, desc: str, unit: str, at_once: bool = False, share: str = "the slice's area"):
        self.total, self.desc, self.unit, self.share = total, desc, unit, share
        self.n, self.postfix, self.lines = 0, "", 0
        self.start = self.last = time.perf_counter()
        if at_once:
            self._write(self.start)

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self.last >= LOG_EVERY:
            self.last = now
            self._write(now)

    def set_postfix_str(self, text: str, refresh: bool = False) -> None:
        self.postfix = text

    def close(self) -> None:
        if self.lines:
            self._write(time.perf_counter())

    def _write(self, now: float) -> None:
        done = (f"{self.n / self.total:.0%} of {self.share}" if self.unit == "area"
                else f"{self.n:,} of {self.total:,} {self.unit}s")
        print(f"{self.desc}: {self.postfix}{', ' if self.postfix else ''}{done}, {now - self.start:.0f} s",
              file=sys.stderr, flush=True)
        self.lines += 1


def progress_bar(progress, total: float, desc: str, unit: str, share: str = "the slice's area", **bar_options):
    """What shows progress (None: progress is False), after 2 s where progress is None, at once
    where it is True: tqdm's bar on a terminal or in a notebook, else :class:`ProgressLines`
    (``share``: what a unit "area" is a share of)."""
    if progress is False:
        return None
    from tqdm.auto import tqdm

    notebook = any(cls.__name__ == "tqdm_notebook" for cls in tqdm.__mro__)
    if not notebook and not sys.stderr.isatty():
        return ProgressLines(total, desc, unit, at_once=bool(progress), share=share)
    return tqdm(total=total, desc=desc, delay=0 if progress else 2.0, **({} if unit == "area" else {"unit": unit}),
                **bar_options)


class Watch:
    """Progress and limits of one run over a domain (a slice, a leg of a path: its ``measure``,
    ``noun`` and ``measure_noun``): ``done`` regions finished, ``pending`` waiting, ``area``: the
    measure of the domain finished.  progress: None shows a bar after :data:`BAR_DELAY` s (made
    then: a run that ends sooner, such as a path's partition made per call, pays nothing for it),
    True at once, False never; timeout: seconds from ``started`` (a ``time.perf_counter()``
    reading, default the call of :meth:`start`; None: no limit); limit_note: said of
    ``max_regions`` in its error."""

    def __init__(self, sl, progress, max_regions: int, timeout: float | None, started: float | None = None,
                 limit_note: str = ""):
        self.slice, self.progress, self.max_regions, self.timeout = sl, progress, max_regions, timeout
        self.started, self.limit_note = started, limit_note
        self.done = self.pending = 0
        self.area = 0.0
        self.bar = None
        self.bar_at: float | None = None  # when the bar is made (at the first progress shown from then on)
        self.keep_open = False  # True: several runs share the watch (the legs of a path); close() waits

    def start(self) -> None:
        """Start the clock (unless ``started`` was given) and, where ``progress`` is True, the bar."""
        self.started = time.perf_counter() if self.started is None else self.started
        self.deadline = self.started + self.timeout if self.timeout is not None else float("inf")
        if self.bar_at is None:  # (not the next run of several)
            self.bar_at = time.perf_counter() + BAR_DELAY if self.progress is None else float("inf")
            if self.progress:
                self._open_bar()

    def measuring(self, more: bool = True) -> bool:
        """Whether the measure of regions finished now is read: by a bar (open, due, or one that
        may open while the run goes on, where ``more`` regions follow) or by a time limit's error."""
        if self.bar is not None or self.timeout is not None:
            return True
        return self.progress is None and (more or time.perf_counter() >= self.bar_at)

    def _open_bar(self) -> None:
        self.bar = progress_bar(True, float(self.slice.measure), "splinecam", "area", self._share(), miniters=0,
                                mininterval=0.25,
                                bar_format="{desc}: {percentage:3.0f}% of the " + self.slice.noun
                                + " |{bar}| {elapsed}<{remaining}{postfix}")

    def _share(self) -> str:
        """What the finished measure is a share of, e.g. "the slice's area" (a volume's: "the volume")."""
        noun, measure = self.slice.noun, self.slice.measure_noun
        return f"the {noun}" if noun == measure else f"the {noun}'s {measure}"

    def close(self) -> None:
        if self.bar is not None and not self.keep_open:
            self.bar.close()

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.started

    def finished(self, cells) -> None:
        """The regions ``cells`` (R,) are finished.  (Their measure is summed only where a bar or
        the time limit's message can say it: :meth:`measuring`.)"""
        self.add(len(cells), float(cells.measure().sum()) if self.measuring() else 0.0)

    def add(self, regions: int, measure: float) -> None:
        """``regions`` more regions are finished, of ``measure`` in all."""
        self.done += regions
        self.area += measure
        self.show()

    def show(self, where: str = "") -> None:
        """Progress: regions so far, the op being split, the finished share of the area."""
        if self.bar is None:
            if self.bar_at is None or time.perf_counter() < self.bar_at:
                return
            self._open_bar()
        self.bar.set_postfix_str(f"{self.done:,} regions" + (f", splitting {where}" if where else ""), refresh=False)
        self.bar.update(min(self.area, self.bar.total) - self.bar.n)

    def check_time(self) -> None:
        if time.perf_counter() > self.deadline:
            raise TimeLimitError(
                f"the partition took longer than timeout={self.timeout:g} s ({self.done:,} regions finished, "
                f"{self.area / self.slice.measure:.1%} of {self._share()}); the error's .partial holds them.  "
                f"Use a smaller {self.slice.noun} or pass a larger timeout."
            )

    def check(self, where: str, regions: int) -> None:
        """During a split at op ``where``: raise if ``regions`` more (at least) would pass
        ``max_regions`` or if the time is up; show progress."""
        total = self.done + self.pending + regions
        if total > self.max_regions:
            raise RegionLimitError(
                f"the partition has more than max_regions={self.max_regions:,} regions{self.limit_note} "
                f"(at least {total:,} at {where or 'an unnamed op'}); the error's .partial holds the {self.done:,} "
                f"regions finished so far.  Use a smaller {self.slice.noun} or pass a larger max_regions."
            )
        self.check_time()
        self.show(where)
