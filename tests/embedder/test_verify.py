"""The pixel check: placements recovered for every alteration it searches, and copies told from look-alikes."""
from __future__ import annotations

import io
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from embedder.d4 import D4_NAMES, apply_to_tensor, apply_transform, inverse_transform
from embedder.verify import (
    FFT_MIN_PIXELS,
    AlignConfig,
    Alignment,
    align_encoded,
    align_many,
    align_pair,
    best_ncc,
    cross_correlate,
    high_pass,
    rotate,
)
from training.synth import KINDS, generate_specimen_field

SIZE = (160, 120)


def field(kind: str = "histology_he", index: int = 0, seed: int = 7) -> Image.Image:
    return generate_specimen_field(kind, seed, index, SIZE)


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_d4_view_matches_the_report_transforms() -> None:
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    for view, name in enumerate(D4_NAMES):
        expected = np.asarray(apply_transform(Image.fromarray(arr.astype(np.uint8)), name), dtype=np.float32)
        assert np.array_equal(apply_to_tensor(torch.from_numpy(arr), view).numpy(), expected), name


@pytest.mark.parametrize("side", [40, 120])  # below and above FFT_MIN_PIXELS
def test_cross_correlation_is_exact_on_both_paths(side: int) -> None:
    assert (side * side >= FFT_MIN_PIXELS) == (side == 120)
    g = torch.Generator().manual_seed(0)
    container, templates = torch.rand(side, side + 7, generator=g), torch.rand(3, side // 2, side // 3, generator=g)
    got = cross_correlate(container, templates)
    direct = torch.nn.functional.conv2d(container[None, None].double(), templates[:, None].double())[0]
    assert got.shape == direct.shape
    assert torch.allclose(got.double(), direct, rtol=1e-4, atol=1e-3)


def test_best_ncc_finds_a_planted_template() -> None:
    g = torch.Generator().manual_seed(1)
    container = torch.rand(120, 110, generator=g)
    template = container[30:90, 20:70].clone()
    ncc, where = best_ncc(container, torch.stack([template, torch.rand(60, 50, generator=g)]))
    assert ncc[0] == pytest.approx(1.0, abs=1e-4) and ncc[1] < 0.5
    assert divmod(int(where[0]), 110 - 50 + 1) == (30, 20)


def test_rotate_turns_counter_clockwise_like_pil() -> None:
    ray = np.zeros((41, 61), np.float32)
    ray[20, 30:58] = 1.0  # a line from the centre to the right
    turned = rotate(torch.from_numpy(ray), [30.0, 0.0])
    ys, xs = np.nonzero(turned[0, 0].numpy() > 0.3)
    pil = np.asarray(Image.fromarray((ray * 255).astype(np.uint8)).rotate(30, resample=Image.Resampling.BILINEAR))
    pys, pxs = np.nonzero(pil > 80)
    assert ys.mean() < 20  # up: counter-clockwise on screen
    assert abs(ys.mean() - pys.mean()) < 1.0 and abs(xs.mean() - pxs.mean()) < 1.0
    assert torch.equal(turned[1, 0], torch.from_numpy(ray))  # angle 0 is an exact copy


@pytest.mark.parametrize("name", D4_NAMES)
def test_every_turn_and_mirror_is_recovered_as_the_map_from_b_onto_a(name: str) -> None:
    a = field("fluorescence")
    b = apply_transform(a, inverse_transform(name))
    found = align_pair(a, b)
    assert found.transform == name
    assert found.correlation > 0.99 and found.detail > 0.95
    assert found.angle == 0.0 and found.scale == 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_a_crop_is_placed_in_its_source_in_both_directions(kind: str) -> None:
    a = field(kind)
    crop = a.crop((20, 15, 132, 99)).resize((150, 112), Image.Resampling.BICUBIC)  # 70% a side, enlarged
    forward, backward = align_pair(a, crop), align_pair(crop, a)
    assert forward.b_inside_a and not backward.b_inside_a
    for found in (forward, backward):
        assert found.transform == "identity"
        assert found.scale == pytest.approx(0.70, abs=0.05)
        assert found.correlation > 0.9 and found.detail > 0.85


def test_the_stretch_pass_fits_a_crop_that_kept_unequal_shares_of_its_sides() -> None:
    plain, stretched = [], []
    for kind in KINDS:
        a = field(kind)
        squeezed = a.crop((20, 10, 132, 106)).resize((150, 112), Image.Resampling.BICUBIC)  # kept 70% x 80%
        plain.append(align_pair(a, squeezed, AlignConfig(aspects=(1.0,))).correlation)
        stretched.append(align_pair(a, squeezed).correlation)
    # measured: without the pass 0.78-0.99, with it 0.83-0.99 (+0.05 on average)
    assert all(s >= p for p, s in zip(plain, stretched)), (plain, stretched)
    assert np.mean(stretched) - np.mean(plain) > 0.03 and min(stretched) > 0.8


@pytest.mark.parametrize("degrees", [10, -10])
def test_a_small_turn_is_found_with_its_sense(degrees: int) -> None:
    a = field()
    b = a.rotate(degrees, resample=Image.Resampling.BILINEAR)  # PIL: counter-clockwise
    found = align_pair(a, b)
    assert found.transform == "identity"
    assert found.angle == pytest.approx(-degrees, abs=3.5)  # turning b back onto a
    assert found.correlation > 0.95
    # the other way round the turn maps a's content onto b's
    assert align_pair(b.crop((25, 20, 135, 100)), a).angle == pytest.approx(degrees, abs=3.5)


@pytest.mark.parametrize("kind", KINDS)
def test_another_field_of_the_same_specimen_has_little_detail_in_common(kind: str) -> None:
    copy = align_pair(field(kind), field(kind).rotate(8, resample=Image.Resampling.BILINEAR))
    other = align_pair(field(kind, index=0), field(kind, index=1))
    # measured detail of other fields: 0.09-0.48 across kinds; copies 0.87-1.0
    assert other.detail < 0.6 < 0.8 < copy.detail
    assert other.correlation < copy.correlation


def test_uniform_panels_have_nothing_to_correlate() -> None:
    grey = Image.new("RGB", SIZE, (128, 128, 128))
    assert align_pair(grey, grey).correlation == 0.0
    assert align_pair(grey, field()).correlation == 0.0


def test_high_pass_removes_the_local_mean() -> None:
    ramp = torch.linspace(0, 1, 40)[None].repeat(30, 1)
    assert high_pass(ramp, 5)[:, 2:-2].abs().max() < 1e-5  # inside, a linear ramp is its own local mean
    spot = torch.zeros(30, 40)
    spot[15, 20] = 1.0
    assert high_pass(spot, 5)[15, 20] == pytest.approx(1 - 1 / 25)


def test_an_unreadable_panel_scores_zero_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="embedder.verify"):
        assert align_encoded(b"not an image", png(field())) == Alignment(0.0)
    assert "unreadable panel" in caplog.text


def test_align_many_pairs_lists_in_order_and_restores_threads() -> None:
    a = field()
    threads = torch.get_num_threads()
    found = align_many([png(a), png(a)], [png(a.transpose(Image.Transpose.FLIP_LEFT_RIGHT)), png(field(index=1))])
    assert torch.get_num_threads() == threads
    assert found[0].transform == "flip_h" and found[0].correlation > 0.99
    assert found[1].detail < 0.6
    with pytest.raises(ValueError):
        align_many([png(a)], [])


def test_config_round_trips_through_checkpoint_meta() -> None:
    config = AlignConfig(scales=(1.0, 0.8), angles=(0.0, 5.0), aspects=(0.9, 1.0), detail_side=96)
    data = config.to_dict()
    data["unknown_future_key"] = 1
    data["scales"], data["aspects"] = list(data["scales"]), list(data["aspects"])  # as stored: lists
    assert AlignConfig.from_dict(data) == config


def test_own_aspect_recovers_the_detail_of_a_crop_that_kept_its_proportions() -> None:
    from dataclasses import replace

    from embedder.verify import AlignConfig, align_pair, own_aspects
    from training.data import all_kinds, specimen_image

    field = specimen_image(all_kinds(), 7005, 0, 220, 220)[1]
    w, h = field.size
    crop = field.crop((20, 20, 20 + round(w * 0.67), 20 + round(h * 0.54)))  # 0.67 x 0.54 of the sides
    full = AlignConfig(screen=0.0)  # the stretch pass runs for every pair, screened or not
    plain = align_pair(field, crop, full)
    own = align_pair(field, crop, replace(full, own_aspect=True))
    assert own.detail > plain.detail + 0.05 and own.correlation >= plain.correlation
    assert AlignConfig.from_dict({}).own_aspect is False  # calibrations made before it keep their search
    assert own_aspects(torch.zeros(40, 40), torch.zeros(20, 20), 0, 0.5) == ()  # same shape: nothing to add
    assert own_aspects(torch.zeros(40, 40), torch.zeros(16, 20), 0, 0.5) == pytest.approx((0.8,))
    assert own_aspects(torch.zeros(40, 40), torch.zeros(16, 20), 1, 0.5) == pytest.approx((1.25,))  # quarter turn


@pytest.mark.parametrize("shape,container,scale,aspect", [((40, 52), (31, 36), 0.85, 1.0), ((33, 33), (30, 41), 0.6, 1.0),
                                                          ((64, 48), (60, 70), 1.0, 0.93)])
def test_all_views_made_from_two_turned_copies_equal_the_per_view_templates(
        shape: tuple[int, int], container: tuple[int, int], scale: float, aspect: float) -> None:
    from embedder.verify import _all_view_templates, _templates

    panel = torch.rand(*shape)
    angles = (0.0, -6.0, 6.0, -12.0, 12.0)
    fast = _all_view_templates(panel, container, range(8), scale, angles, 0.8, aspect)
    slow = _templates([apply_to_tensor(panel, v) for v in range(8)], container, scale, angles, 0.8, aspect)
    assert fast is not None and slow is not None and fast.shape == slow.shape
    assert torch.allclose(fast, slow, atol=1e-5)


def test_batched_fft_correlation_equals_direct_per_group() -> None:
    from embedder.verify import _best_ncc_groups, _Container, _prepare

    torch.manual_seed(0)
    container = _Container(torch.rand(57, 73))
    raw = [torch.rand(3, 45, 58), torch.rand(1, 40, 66), None, torch.rand(2, 60, 10)]  # the last does not fit
    groups = [_prepare(g) for g in raw]
    fft, direct = _best_ncc_groups(container, groups, True), _best_ncc_groups(container, groups, False)
    assert fft[2] is None and fft[3] is None and direct[3] is None
    for f, d in zip(fft[:2], direct[:2]):
        assert f is not None and d is not None
        assert f[1] == d[1] and np.allclose(f[0], d[0], atol=1e-5)


def test_the_screen_stops_unrelated_pairs_at_the_coarse_stage_and_never_a_copy() -> None:
    from dataclasses import replace

    full = AlignConfig(screen=0.0)
    other = align_pair(field(index=0), field("western_blot", index=3), AlignConfig())
    assert other.correlation < AlignConfig().screen  # reported from the coarse stage
    assert other == align_pair(field(index=0), field("western_blot", index=3), replace(full, screen=1.01))
    copy = field(index=1).rotate(90, expand=True).resize((100, 140))
    assert align_pair(field(index=1), copy, AlignConfig()) == align_pair(field(index=1), copy, full)
    # an 80 % crop, mirrored, of a sparse generated picture: its scale lies between the coarse grid's and its
    # coarse correlation is only ~0.78 (a screen at 0.8 stopped it: `reusescan query` then missed the copy)
    from training.synth import generate

    source = generate("histology_he", seed=103, size=(240, 200))
    w, h = source.size
    crop = source.crop((int(0.05 * w), int(0.15 * h), int(0.85 * w), int(0.95 * h))).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    kept = align_pair(crop, source, AlignConfig())
    assert kept == align_pair(crop, source, full) and kept.correlation > 0.9
    assert AlignConfig.from_dict({}).screen == AlignConfig().screen  # calibrations made before it get the screen


@pytest.mark.parametrize("kind", ["crop", "rotate90", "rotate", "hflip", "vflip", "color_jitter", "grayscale",
                                  "gaussian_noise", "poisson_noise", "blur", "jpeg", "rescale", "crop+hflip"])
def test_the_screen_keeps_every_planted_alteration_kind(kind: str) -> None:
    from dataclasses import replace

    from training.alterations import ALTERATION_KINDS, apply_named
    from training.synth import generate

    assert set(kind.split("+")) <= set(ALTERATION_KINDS)
    rng = np.random.default_rng(sum(map(ord, kind)))
    source = generate("histology_he", seed=11, size=(200, 160))
    altered = source
    for name in kind.split("+"):
        altered, _ = apply_named(altered, name, rng)
    found = align_pair(source, altered)
    assert found == align_pair(source, altered, replace(AlignConfig(), screen=0.0))  # searched in full
    assert found.correlation > 0.8


def test_a_panel_compared_with_several_candidates_gives_what_fresh_panels_give() -> None:
    from embedder.verify import MEMO_TEMPLATE_BYTES, PanelPixels, pixel_features

    def pixels(image: Image.Image) -> PanelPixels:
        return PanelPixels.from_bytes(pixel_features(image))

    panel = field(index=0)
    others = [field(index=0).rotate(90, expand=True), field(index=2), field("western_blot", index=1),
              field(index=0).crop((10, 5, 120, 90)), field(index=3).resize((90, 150))]
    kept = pixels(panel)  # its containers and coarse templates are kept across the pairs
    for other in others:
        assert align_pair(kept, pixels(other)) == align_pair(pixels(panel), pixels(other))
        assert align_pair(pixels(other), kept) == align_pair(pixels(other), pixels(panel))
    coarse = kept.memo[(AlignConfig().coarse_side, 0)]
    assert 0 < coarse._template_bytes <= MEMO_TEMPLATE_BYTES
