"""Targets: the tutorial picture, GMM pixel masses, a fitted mixture moved into the
square, and uploaded pictures (orientation, darkness, refusals)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from helpers import FIT

from gmmot_core.targets import (
    gmm_image,
    image_from_bytes,
    mixture_in_box,
    tutorial_image,
)


def test_tutorial_image_is_the_reference_target(reference):
    ref = np.load(reference / "semidiscrete" / "target.npy")
    ours = tutorial_image(64)
    # same formula, normalised the same way: equal to float64 round-off
    assert np.abs(ours / ours.sum() - ref / ref.sum()).max() < 1e-17


def test_gmm_image_matches_the_closed_form_pixel_masses():
    """Axis-aligned components have exact pixel masses (products of erf differences)."""
    means = np.array([[0.4, 0.5], [0.7, 0.3]])
    sd = np.array([[0.08, 0.12], [0.05, 0.07]])
    covs = np.stack([np.diag(s**2) for s in sd])
    weights = np.array([0.6, 0.4])
    values, outside = gmm_image(means, covs, weights, (32, 40))
    edges_x, edges_y = np.linspace(0, 1, 33), np.linspace(0, 1, 41)
    cdf = np.vectorize(lambda t: 0.5 * (1 + math.erf(t / math.sqrt(2))))
    exact = sum(
        p * np.outer(np.diff(cdf((edges_x - m[0]) / s[0])), np.diff(cdf((edges_y - m[1]) / s[1])))
        for m, s, p in zip(means, sd, weights, strict=True)
    )
    # 6-point Gauss-Legendre per pixel, h / sigma <= 0.63: relative error far below 1e-8
    assert np.abs(values / (32 * 40) - exact).max() < 1e-10
    assert outside == pytest.approx(1 - exact.sum(), abs=1e-10)


def test_a_fitted_mixture_is_moved_into_the_square_by_a_similarity():
    fit = mixture_in_box(*FIT)
    means, covs = np.array(fit["means"]), np.array(fit["covs"])
    sd = np.sqrt(np.diagonal(covs, axis1=1, axis2=2))
    # every 3-sigma box inside [0.1, 0.9]^2 and touching it on the widest axis
    assert np.all(means - 3 * sd >= 0.1 - 1e-12) and np.all(means + 3 * sd <= 0.9 + 1e-12)
    assert min(np.min(means - 3 * sd), 1 - np.max(means + 3 * sd)) == pytest.approx(0.1)
    # one scale s: covariances times s^2, distances between means times s
    s2 = covs[0, 0, 0] / FIT[2][0, 0, 0]
    assert np.allclose(covs, s2 * FIT[2], rtol=1e-12, atol=0)
    ratio = np.linalg.norm(means[1] - means[0]) / np.linalg.norm(FIT[1][1] - FIT[1][0])
    assert ratio**2 == pytest.approx(s2)
    assert fit["weights"] == pytest.approx([0.3, 0.7])
    with pytest.raises(ValueError, match="no extent"):
        mixture_in_box([1.0], [[1.0, 1.0]], [[[0.0, 0.0], [0.0, 0.0]]])
    with pytest.raises(ValueError, match="finite"):
        mixture_in_box([1.0], [[np.nan, 1.0]], [np.eye(2)])


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array.astype(np.uint8), "L").save(buf, format="PNG")
    return buf.getvalue()


def test_uploaded_image_orientation_and_darkness():
    img = np.full((20, 30), 255)  # 20 rows, 30 columns, white
    img[0, 0] = 0  # black pixel at the top left
    values = image_from_bytes(_png(img))
    assert values.shape == (30, 20)  # axis 0 = x (columns)
    assert np.unravel_index(values.argmax(), values.shape) == (0, 19)  # x = 0, y = top
    assert image_from_bytes(_png(img), invert=True).min() == 0.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n garbage", "not a readable image: the file is damaged or cut short"),
        (b"x,y\n1,2\n", "not a readable image: not a PNG or JPEG file, or a damaged one"),
        (_png(np.zeros((8, 8)))[:40], "not a readable image: not a PNG or JPEG file, or a damaged"),
        (_png(np.full((4, 4), 255)), "no mass"),
    ],
)
def test_bad_images_are_refused_with_a_message(data, message):
    """In the user's words (issue 42 item 11: the message named a Python class)."""
    with pytest.raises(ValueError, match=message) as info:
        image_from_bytes(data)
    assert "Error" not in str(info.value)
