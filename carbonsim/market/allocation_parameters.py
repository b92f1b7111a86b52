"""The parameters each allocation rule reads, and the check that refuses any other.

A typo in ``allocation_params`` (``benchmark_scal``) would otherwise run silently with the
default; the engine checks every period's parameters before it allocates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["RULE_PARAMETERS", "check_rule_parameters"]


#: The parameters each built-in allocation rule reads from ``allocation_params`` (see each
#: rule's docstring for units and defaults). ``by_sector`` also passes its sub-rules'
#: parameters through. A rule registered without an entry here is not checked.
RULE_PARAMETERS: dict[str, frozenset[str]] = {
    "china_power_benchmark": frozenset(
        {
            "benchmark_year",
            "benchmarks",
            "benchmark_scale",
            "f_correction",
            "f_load_threshold",
            "f_load_slope",
            "f_load_cap",
        }
    ),
    "industry_intensity": frozenset({"sectors", "balance_intensity", "alpha_slope", "alpha_cap"}),
    "grandfathering": frozenset(
        {"historical_emissions", "factor", "annual_decline", "base_year", "sectors"}
    ),
    "absolute_cap": frozenset(
        {"cap", "cap_schedule", "free_share", "historical_emissions", "sectors"}
    ),
    "by_sector": frozenset({"rules_by_sector"}),
}


def check_rule_parameters(rule: str, parameters: Mapping[str, Any], where: str) -> None:
    """Refuse parameters the allocation rule ``rule`` does not read.

    A typo such as ``benchmark_scal`` would otherwise run silently with the default.

    Parameters
    ----------
    rule : str
        Allocation rule name (:data:`ALLOCATION_RULES`).
    parameters : mapping
        The ``allocation_params`` given.
    where : str
        The field path for the message, e.g. ``"periods[2019-2020].allocation_params"``.

    Raises
    ------
    ValueError
        Naming the unknown keys and listing the valid ones.

    Examples
    --------
    >>> check_rule_parameters("grandfathering", {"factr": 0.9}, "p")
    Traceback (most recent call last):
    ...
    ValueError: p: unknown parameter 'factr' of allocation rule 'grandfathering'; valid ...
    """
    allowed = RULE_PARAMETERS.get(rule)
    if allowed is None:
        return
    if rule == "by_sector":
        subs = parameters.get("rules_by_sector", {})
        if isinstance(subs, Mapping):
            for sub in subs.values():
                allowed = allowed | RULE_PARAMETERS.get(str(sub), frozenset())
    unknown = sorted(set(parameters) - allowed)
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise ValueError(
            f"{where}: unknown parameter{'s' if len(unknown) > 1 else ''} {names} of "
            f"allocation rule {rule!r}; valid parameters: {', '.join(sorted(allowed))}"
        )
