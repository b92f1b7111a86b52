"""Offset credits (CCER and Beijing carbon-inclusive credits) as arrays.

Offset projects are rows ``0..P-1`` of an :class:`OffsetProjects` table. The functions here
compute quantities (credits issued, eligibility masks, usage caps, offset-market fills) as
numpy arrays; the engine applies them to holdings through the ledger. They live in the
modules of this package, one concept each: :mod:`~carbonsim.market.offsets.projects`
(methodologies and projects), :mod:`~carbonsim.market.offsets.issuance`,
:mod:`~carbonsim.market.offsets.eligibility` (eligibility and usage caps),
:mod:`~carbonsim.market.offsets.market` (the offset market) and
:mod:`~carbonsim.market.offsets.conventions` (dates, year fractions, whole tonnes); every
public name is importable from ``carbonsim.market.offsets``.

Rules implemented (docs/rules.md#offsets; each rule's own anchor is given):

- **Usage limit** (docs/rules.md#offset-limit): at most 5% of the allowances to be
  surrendered, per year (:func:`usage_cap`).
- **Eligibility** (docs/rules.md#ccer-eligibility): not from projects whose emissions are
  covered by the ETS; from 2025 only credits registered after the 22 Jan 2024 relaunch
  (:func:`eligible`).
- **Relaunch and first methodologies** (docs/rules.md#ccer-relaunch,
  docs/rules.md#ccer-methodologies): afforestation, grid-connected solar thermal,
  grid-connected offshore wind and mangrove restoration (:data:`methodologies`).
- **No new credits issued in 2024** (docs/rules.md#ccer-issuance), first issuance March
  2025: the ``first_issuance`` argument of :func:`issued_credits` defers issuance
  (:data:`FIRST_ISSUANCE`).
- **Legacy credits** (docs/rules.md#ccer-legacy-stock): about 32.7 Mt of CCER were
  surrendered in the first cycle (:data:`LEGACY_CCER_FIRST_CYCLE_T`,
  :func:`legacy_ccer_stock`).
- **Beijing pilot** (docs/rules.md#beijing-offset-limit): offsets at most 5% of the annual
  allocation, at least half from Beijing projects; Beijing carbon-inclusive credits allowed
  (:func:`beijing_usage_cap`, :func:`beijing_offset_use`). The carbon-inclusive
  methodologies (low-carbon travel, hydrogen fuel-cell vehicles) come from seed files 003
  and 004.

Offsets trade in their own market with their own price: an offset session clears every
usable class in every replicate at once (:func:`clear_offset_classes`: units' bids under
their usage cap against project owners' lots, :func:`clear_offset_bids`, the credits
transferred by the ledger). This is the engine's one offset market.

Conventions
-----------
- Dates are ``numpy.datetime64[D]``; periods are half-open ``[start, end)``, so a calendar
  year 2025 is ``("2025-01-01", "2026-01-01")``.
- An annual rate (t CO2e/yr) is turned into a quantity for a period with the actual/actual
  year fraction: each calendar year contributes (days in the period) / (days in that year),
  so a full calendar year, leap or not, is exactly one year.
- Credits, caps and fills are whole tonnes (``int64``); expected reductions and prices are
  ``float64``. Prices are yuan/t.
- The numeric defaults of the methodologies (typical size, lag, dispersion, cost) are
  illustrative (conf. C); the rule table gives only which methodologies exist. Replace them
  with ``methodologies.register(code, replace=True)``.
- Beijing's "at least half from Beijing projects" is applied as a cap on non-local credits
  of half the offset cap (2.5% of the allocation), so a unit may use fewer local credits
  than non-local ones only if it stays under the 2.5% non-local cap.
"""

from __future__ import annotations

from carbonsim.market.offsets.conventions import year_fraction
from carbonsim.market.offsets.eligibility import (
    LEGACY_CCER_FIRST_CYCLE_T,
    RELAUNCH_DATE,
    BeijingOffsetCap,
    beijing_offset_use,
    beijing_usage_cap,
    eligible,
    legacy_ccer_stock,
    usage_cap,
)
from carbonsim.market.offsets.issuance import FIRST_ISSUANCE, Issuance, issued_credits
from carbonsim.market.offsets.market import (
    OFFSET_CUTOFF_Z,
    OFFSET_LOTS,
    clear_offset_bids,
    clear_offset_classes,
)
from carbonsim.market.offsets.projects import (
    Methodology,
    OffsetProjects,
    methodologies,
    methodology_table,
    synthetic_projects,
)

__all__ = [
    "FIRST_ISSUANCE",
    "LEGACY_CCER_FIRST_CYCLE_T",
    "OFFSET_CUTOFF_Z",
    "OFFSET_LOTS",
    "RELAUNCH_DATE",
    "BeijingOffsetCap",
    "Issuance",
    "Methodology",
    "OffsetProjects",
    "beijing_offset_use",
    "beijing_usage_cap",
    "clear_offset_bids",
    "clear_offset_classes",
    "eligible",
    "issued_credits",
    "legacy_ccer_stock",
    "methodologies",
    "methodology_table",
    "synthetic_projects",
    "usage_cap",
    "year_fraction",
]
