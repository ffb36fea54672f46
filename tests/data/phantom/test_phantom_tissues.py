"""The tissue table and signal equation give the contrasts the phantom relies on."""

from __future__ import annotations

from medgan.data.phantom import tissues as t


def test_t1w_signal_orders_tissues_like_a_t1_weighted_scan():
    signal = t.TissueProperties.from_table().t1w_signal()
    wm = signal[t.WHITE_MATTER]
    assert signal[t.FAT] > wm > signal[t.GREY_MATTER] > signal[t.CSF] > 0.2 * wm
    # the MRI -> CT ambiguity: cortical bone and air are both (nearly) black on T1 ...
    assert signal[t.CORTICAL_BONE] < 0.01 * wm
    assert signal[t.AIR] == 0 and signal[t.SINUS_AIR] == 0


def test_ct_numbers_put_bone_and_air_at_opposite_extremes():
    hu = {tissue.label: tissue.ct_hu for tissue in t.TISSUES}
    assert hu[t.CORTICAL_BONE] > 1000 and hu[t.AIR] == -1000 and hu[t.SINUS_AIR] == -1000
    assert 20 <= hu[t.WHITE_MATTER] < hu[t.GREY_MATTER] <= 45
    assert 0 <= hu[t.CSF] < 15 and -120 <= hu[t.FAT] <= -50


def test_legend_names_every_label_once():
    legend = t.tissue_legend()
    assert sorted(int(k) for k in legend) == list(range(t.NUM_LABELS))
    assert len(set(legend.values())) == t.NUM_LABELS
