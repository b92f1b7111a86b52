"""UnitTable: construction, validation naming fields, frames, subsets, activity draws."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from carbonsim.market.units import (
    MAC_FORMS,
    SECTORS,
    SUBTYPES,
    UnitTable,
    draw_activity,
)


def three_units() -> UnitTable:
    """A coal CHP unit, a gas unit and a steel plant with a two-step MAC curve."""
    return UnitTable.create(
        ["power", "power", "steel"],
        subtype=["coal_gt300mw", "gas", "none"],
        names=["coal", "gas", "steel"],
        electricity_mwh=[3.3e6, 1.0e6, 0.0],
        heat_gj=[1.0e6, 0.0, 0.0],
        product_t=[0.0, 0.0, 2.0e6],
        intensity_electricity=[0.8, 0.35, 0.0],
        intensity_heat=[0.11, 0.0, 0.0],
        intensity_product=[0.0, 0.0, 1.8],
        growth=[0.02, 0.05, -0.01],
        sigma_output=[0.05, 0.1, 0.0],
        sigma_intensity=[0.01, 0.0, 0.02],
        mac_form=["linear", "linear", "steps"],
        mac_slope=[1e-3, 2e-3, 1.0],
        mac_max_share=[0.1, 0.05, 0.0],
        mac_step_cost=[[0.0, 0.0], [0.0, 0.0], [50.0, 300.0]],
        mac_step_share=[[0.0, 0.0], [0.0, 0.0], [0.05, 0.10]],
        pollutant_factors=[[0.12, 0.18, 0.025], [0.0, 0.45, 0.01], [0.35, 0.5, 0.25]],
        capacity_mw=[600.0, 400.0, 0.0],
        load_factor=[0.63, 0.29, 0.0],
    )


class TestConstruction:
    def test_baseline_emissions_by_hand(self) -> None:
        u = three_units()
        # coal: 3.3e6 MWh x 0.8 + 1e6 GJ x 0.11 = 2,640,000 + 110,000 = 2,750,000 t
        # gas: 1e6 x 0.35 = 350,000 t; steel: 2e6 t x 1.8 = 3,600,000 t
        np.testing.assert_allclose(u.baseline_emissions(), [2.75e6, 3.5e5, 3.6e6])
        assert u.baseline_emissions().shape == (3,)

    def test_codes_and_labels(self) -> None:
        u = three_units()
        assert u.n_units == len(u) == 3
        assert u.sector.dtype == np.int8
        assert u.sector.tolist() == [SECTORS.index("power")] * 2 + [SECTORS.index("steel")]
        assert u.subtype_labels().tolist() == ["coal_gt300mw", "gas", "none"]
        assert u.mac_form.tolist() == [0, 0, MAC_FORMS.index("steps")]
        assert u.in_sector("steel").tolist() == [False, False, True]
        assert u.of_subtype("gas", "coal_gt300mw").tolist() == [True, True, False]
        assert u.names.name == "unit"
        assert u.names.tolist() == ["coal", "gas", "steel"]
        assert u.n_steps == 2

    def test_integer_codes_are_accepted(self) -> None:
        u = UnitTable.create([SECTORS.index("power")], subtype=[SUBTYPES.index("gas")])
        assert u.subtype_labels().tolist() == ["gas"]

    def test_arrays_are_read_only_copies(self) -> None:
        elec = np.array([1.0])
        u = UnitTable.create(["power"], subtype=["gas"], electricity_mwh=elec)
        elec[0] = 5.0
        assert u.electricity_mwh[0] == 1.0
        with pytest.raises(ValueError, match="read-only"):
            u.electricity_mwh[0] = 2.0

    def test_defaults_have_no_abatement_and_no_steps(self) -> None:
        u = UnitTable.create(["generic", "generic"])
        assert u.mac_step_cost.shape == (2, 0)
        assert u.pollutant_factors.shape == (2, 3)
        assert u.names.tolist() == [0, 1]
        assert u.mac_max_share.tolist() == [0.0, 0.0]

    def test_repr_is_a_summary(self) -> None:
        assert repr(three_units()) == "UnitTable(n_units=3, power=2, steel=1)"


class TestValidation:
    def test_negative_activity_names_field_and_unit(self) -> None:
        with pytest.raises(ValueError, match=r"UnitTable\.heat_gj must be >= 0.*heat_gj\[1\]"):
            UnitTable.create(["generic", "generic"], heat_gj=[1.0, -2.0])

    def test_non_finite_value_names_field_and_unit(self) -> None:
        with pytest.raises(ValueError, match=r"UnitTable\.intensity_product.*\[0\]"):
            UnitTable.create(["generic"], intensity_product=[np.nan])

    def test_unknown_sector_lists_valid_ones(self) -> None:
        with pytest.raises(ValueError, match=r"UnitTable\.sector\[1\] = 'coal'.*'power'"):
            UnitTable.create(["power", "coal"], subtype=["gas", "none"])

    def test_sector_code_out_of_range(self) -> None:
        with pytest.raises(ValueError, match=r"UnitTable\.sector must be <= 10"):
            UnitTable.create([11])

    def test_power_unit_needs_power_subtype(self) -> None:
        with pytest.raises(ValueError, match=r"subtype\[0\] = 'none' is not valid for a 'power'"):
            UnitTable.create(["power"])

    def test_non_power_unit_cannot_have_power_subtype(self) -> None:
        with pytest.raises(ValueError, match=r"subtype\[1\] = 'gas'.*sector is 'cement'"):
            UnitTable.create(["power", "cement"], subtype=["gas", "gas"])

    def test_lengths_must_agree(self) -> None:
        with pytest.raises(ValueError, match=r"UnitTable\.growth must be a scalar or have shape"):
            UnitTable.create(["generic", "generic"], growth=[0.1, 0.2, 0.3])

    def test_constructor_lengths_must_agree(self) -> None:
        u = three_units()
        with pytest.raises(ValueError, match=r"UnitTable\.capacity_mw has 2"):
            u.evolve(capacity_mw=[1.0, 2.0])

    def test_load_factor_above_one(self) -> None:
        with pytest.raises(ValueError, match=r"load_factor\[0\] = 1.5"):
            UnitTable.create(["power"], subtype=["gas"], load_factor=[1.5])

    def test_growth_must_exceed_minus_one(self) -> None:
        with pytest.raises(ValueError, match=r"UnitTable\.growth must be > -1"):
            UnitTable.create(["generic"], growth=[-1.0])

    def test_mac_slope_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match=r"UnitTable\.mac_slope must be > 0"):
            UnitTable.create(["generic"], mac_slope=[0.0])

    def test_mac_steps_must_be_sorted(self) -> None:
        with pytest.raises(ValueError, match=r"mac_step_cost\[0, 0\] = 9.0 >"):
            UnitTable.create(["generic"], mac_step_cost=[[9.0, 1.0]], mac_step_share=[[0.1, 0.1]])

    def test_mac_step_shares_sum_to_at_most_one(self) -> None:
        with pytest.raises(ValueError, match=r"sum to at most 1.*unit 0"):
            UnitTable.create(["generic"], mac_step_cost=[[1.0, 2.0]], mac_step_share=[[0.6, 0.6]])

    def test_mac_step_arrays_go_together(self) -> None:
        with pytest.raises(ValueError, match="given together"):
            UnitTable.create(["generic"], mac_step_cost=[[1.0]])

    def test_unknown_mac_form(self) -> None:
        with pytest.raises(ValueError, match=r"mac_form.*'quadratic'.*'linear'"):
            UnitTable.create(["generic"], mac_form="quadratic")

    def test_pollutant_factors_shape(self) -> None:
        with pytest.raises(ValueError, match="pollutant_factors must have shape"):
            UnitTable(**{**_fields(three_units()), "pollutant_factors": np.zeros((3, 2))})

    def test_duplicate_names(self) -> None:
        with pytest.raises(ValueError, match="names must be unique, got 'a'"):
            UnitTable.create(["generic", "generic"], names=["a", "a"])

    def test_evolve_unknown_field_lists_fields(self) -> None:
        with pytest.raises(TypeError, match=r"unknown UnitTable field.*'colour'.*sector"):
            three_units().evolve(colour=[1, 2, 3])


def _fields(u: UnitTable) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(u, f.name) for f in dataclasses.fields(u)}


class TestFramesAndVariants:
    def test_frame_round_trip(self) -> None:
        u = three_units()
        df = u.to_frame()
        assert df.index.name == "unit"
        assert isinstance(df["sector"].dtype, pd.CategoricalDtype)
        assert df.loc["steel", "mac_step_cost_1"] == 300.0
        assert df.loc["gas", "nox_kg_per_t"] == 0.45
        assert df.attrs["units"]["heat_gj"] == "GJ/yr"
        back = UnitTable.from_frame(df)
        for name, value in _fields(u).items():
            if name == "names":
                assert back.names.equals(u.names)
            else:
                np.testing.assert_array_equal(getattr(back, name), value, err_msg=name)

    def test_from_frame_with_plain_strings_and_defaults(self) -> None:
        df = pd.DataFrame(
            {"sector": ["cement"], "product_t": [1e6], "intensity_product": [0.86]},
            index=pd.Index(["kiln"]),
        )
        u = UnitTable.from_frame(df)
        assert u.baseline_emissions().tolist() == [860000.0]
        assert u.names.tolist() == ["kiln"]

    def test_from_frame_rejects_unknown_columns(self) -> None:
        df = pd.DataFrame({"sector": ["cement"], "prodcut_t": [1.0]})
        with pytest.raises(ValueError, match=r"unknown UnitTable column\(s\) \['prodcut_t'\]"):
            UnitTable.from_frame(df)

    def test_subset_by_mask_and_positions(self) -> None:
        u = three_units()
        s = u.subset(u.in_sector("power"))
        assert s.names.tolist() == ["coal", "gas"]
        np.testing.assert_array_equal(s.baseline_emissions(), u.baseline_emissions()[:2])
        t = u.subset([2, 0])
        assert t.names.tolist() == ["steel", "coal"]
        assert t.mac_step_cost.tolist() == [[50.0, 300.0], [0.0, 0.0]]

    def test_subset_mask_length(self) -> None:
        with pytest.raises(ValueError, match="mask must have N = 3"):
            three_units().subset(np.array([True, False]))

    def test_evolve_revalidates_and_leaves_original(self) -> None:
        u = three_units()
        v = u.evolve(growth=[0.0, 0.0, 0.0], sector=["power", "power", "cement"])
        assert v.growth.tolist() == [0.0, 0.0, 0.0]
        assert v.sector_labels().tolist() == ["power", "power", "cement"]
        assert u.growth.tolist() == [0.02, 0.05, -0.01]


class TestDrawActivity:
    def test_shapes_and_reference_year(self) -> None:
        u = three_units().evolve(sigma_output=np.zeros(3), sigma_intensity=np.zeros(3))
        d = draw_activity(u, years=3, rng=0, replicates=2)
        assert d.output_factor.shape == (2, 3, 3)
        assert d.electricity_mwh.shape == (2, 3, 3)
        # no shocks: year 2 of the coal unit = 3.3e6 x 1.02**2 = 3,433,320 MWh
        np.testing.assert_allclose(d.electricity_mwh[:, 2, 0], 3_433_320.0)
        np.testing.assert_allclose(d.emissions()[:, 0], np.tile(u.baseline_emissions(), (2, 1)))

    def test_explicit_offsets(self) -> None:
        u = three_units().evolve(sigma_output=np.zeros(3), sigma_intensity=np.zeros(3))
        d = draw_activity(u, years=[1, 5], rng=0)
        assert d.offsets.tolist() == [1, 5]
        np.testing.assert_allclose(d.product_t[0, :, 2], [2e6 * 0.99, 2e6 * 0.99**5])

    def test_reproducible_and_replicate_stable(self) -> None:
        u = three_units()
        a = draw_activity(u, years=4, rng=7, replicates=3)
        b = draw_activity(u, years=4, rng=7, replicates=3)
        c = draw_activity(u, years=4, rng=7, replicates=1)
        np.testing.assert_array_equal(a.output_factor, b.output_factor)
        np.testing.assert_array_equal(a.output_factor[:1], c.output_factor)
        assert not np.array_equal(a.output_factor[0], a.output_factor[1])

    def test_generator_stream_is_reproducible(self) -> None:
        u = three_units()
        a = draw_activity(u, years=2, rng=np.random.default_rng(3), replicates=2)
        b = draw_activity(u, years=2, rng=np.random.default_rng(3), replicates=2)
        np.testing.assert_array_equal(a.intensity_factor, b.intensity_factor)

    def test_shocks_are_mean_one_lognormal(self) -> None:
        u = UnitTable.create(
            ["generic"],
            product_t=[1.0],
            intensity_product=[1.0],
            sigma_output=[0.2],
            sigma_intensity=[0.1],
        )
        d = draw_activity(u, years=1, rng=np.random.default_rng(11), replicates=20_000)
        log_out = np.log(d.output_factor[:, 0, 0])
        assert abs(d.output_factor.mean() - 1.0) < 0.01
        assert abs(log_out.std() - 0.2) < 0.005
        assert abs(np.log(d.intensity_factor).std() - 0.1) < 0.003
        assert d.units.sigma_output[0] == 0.2

    def test_unit_without_shock_is_deterministic(self) -> None:
        d = draw_activity(three_units(), years=2, rng=1, replicates=4)
        assert np.all(d.intensity_factor[..., 1] == 1.0)  # gas unit: sigma_intensity 0
        assert np.all(d.output_factor[:, 1, 2] == 0.99)  # steel: sigma_output 0, year 1

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"years": 0}, "years must be >= 1"),
            ({"years": [-1]}, "years must be >= 0"),
            ({"years": 2, "replicates": 0}, "replicates must be >= 1"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, object], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            draw_activity(three_units(), rng=0, **kwargs)  # type: ignore[arg-type]
