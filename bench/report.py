"""Pure pieces of the benchmark report: statistics, checks against a same-run baseline, text.

A :class:`Check` compares voiceops' number with a baseline measured in the same run:
it passes when ``value <= max_ratio * baseline + slack``. ``slack`` (same unit as the
values) is there for the few checks where a fixed cost is expected on top of a ratio, such
as one extra loopback HTTP hop; it is printed next to the target so nobody is misled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between closest ranks."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def ratio(value: float, baseline: float) -> float:
    """``value / baseline``; infinite when the baseline is zero and the value is not."""
    if baseline == 0:
        return 0.0 if value == 0 else math.inf
    return value / baseline


@dataclass(frozen=True)
class Check:
    """One measured number against its same-run baseline and its target."""

    name: str
    value: float
    baseline: float
    unit: str
    max_ratio: float
    slack: float = 0.0  # allowed on top of max_ratio * baseline, in ``unit``
    note: str = ""

    @property
    def ratio(self) -> float:
        return ratio(self.value, self.baseline)

    @property
    def limit(self) -> float:
        return self.max_ratio * self.baseline + self.slack

    @property
    def passed(self) -> bool:
        return math.isfinite(self.value) and self.value <= self.limit


@dataclass(frozen=True)
class Section:
    """One benchmark's outcome: its checks, informational lines, or why it was skipped."""

    title: str
    checks: tuple[Check, ...] = ()
    info: tuple[str, ...] = ()
    skipped: str = ""  # non-empty: the benchmark did not run, and this says why
    error: str = ""  # non-empty: the benchmark broke; counts as a failure

    @property
    def passed(self) -> bool:
        return not self.error and all(c.passed for c in self.checks)


def fmt_value(value: float, unit: str) -> str:
    """A number with its unit, rounded for reading (3 significant digits, no exponent)."""
    if not math.isfinite(value):
        return f"{value} {unit}"
    if value == 0:
        return f"0 {unit}"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:,.{digits}f} {unit}"


def format_check(check: Check) -> str:
    target = f"<= {check.max_ratio:g}x"
    if check.slack:
        target += f" + {fmt_value(check.slack, check.unit)}"
    verdict = "PASS" if check.passed else "FAIL"
    line = (f"  {verdict}  {check.name}: {fmt_value(check.value, check.unit)} vs baseline "
            f"{fmt_value(check.baseline, check.unit)} = {check.ratio:.2f}x (target {target})")
    return line + (f"  [{check.note}]" if check.note else "")


def format_section(section: Section) -> str:
    lines = [f"== {section.title}"]
    if section.skipped:
        lines.append(f"  SKIP  {section.skipped}")
    if section.error:
        lines.append(f"  FAIL  benchmark error: {section.error}")
    lines += [format_check(c) for c in section.checks]
    lines += [f"        {text}" for text in section.info]
    return "\n".join(lines)


@dataclass
class Summary:
    """Counts over all sections; ``exit_code`` is non-zero when any target was missed."""

    sections: list[Section] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        out = [f"{s.title}: {c.name}" for s in self.sections for c in s.checks if not c.passed]
        return out + [f"{s.title}: error" for s in self.sections if s.error]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def format(self, suffix: str = "") -> str:
        """One verdict line (``suffix`` appended to it), then every missed target."""
        checks = [c for s in self.sections for c in s.checks]
        passed = sum(1 for c in checks if c.passed)
        skipped = sum(1 for s in self.sections if s.skipped)
        head = (f"bench: {passed}/{len(checks)} checks passed"
                f"{f', {skipped} skipped' if skipped else ''}{suffix}")
        if not self.failed:
            return head
        return head + "\n" + "\n".join(f"  missed: {name}" for name in self.failed)
