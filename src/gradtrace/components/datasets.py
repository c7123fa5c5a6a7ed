"""Classification data: the 2-D classics generated in code with the run's seed (spiral, moons,
circles, xor, gaussians), and scikit-learn's bundled 8x8 digits. Each returns inputs float32
[N, 2] (digits: [N, 64] or images [N, 1, 8, 8]) and class indices int64 [N]; nothing is
downloaded.
"""

from __future__ import annotations

import math

import torch

from gradtrace.components.data import Samples
from gradtrace.errors import ConfigError, is_finite_number, require


def _check(samples: int, noise: float, classes: int | None = None, least: int = 2) -> None:
    require(isinstance(samples, int) and not isinstance(samples, bool) and samples >= 2,
            "data.samples", samples, "an integer >= 2")
    require(is_finite_number(noise) and noise >= 0, "data.noise", noise, "a finite number >= 0")
    if classes is not None:
        require(isinstance(classes, int) and not isinstance(classes, bool) and classes >= least,
                "data.classes", classes, f"an integer >= {least}")


def _labels(samples: int, classes: int) -> torch.Tensor:
    """Class indices [samples], as equal a share per class as the count allows, in blocks."""
    return torch.arange(samples) * classes // samples


def spiral(samples: int, classes: int, noise: float, *, seed: int) -> Samples:
    """`classes` interleaved arms, each one and a half turns from the centre outwards
    (TensorFlow Playground's hardest set): radius r in [0, 1], angle 3 pi r + 2 pi c / classes,
    plus Gaussian noise of standard deviation `noise` on each coordinate."""
    _check(samples, noise, classes)
    generator = torch.Generator().manual_seed(seed)
    labels = _labels(samples, classes)
    # Position along the arm: the samples of each class evenly spaced from the centre out.
    radius = torch.cat([torch.linspace(0.05, 1.0, int((labels == c).sum())) for c in range(classes)])
    angle = 3 * math.pi * radius + 2 * math.pi * labels / classes
    points = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)
    return Samples(points + noise * torch.randn(samples, 2, generator=generator), labels)


def moons(samples: int, noise: float, *, seed: int) -> Samples:
    """Two interleaved half circles of radius 1 (as scikit-learn's make_moons): class 0 on the
    upper one around (0, 0), class 1 on the lower one around (1, 0.5)."""
    _check(samples, noise)
    generator = torch.Generator().manual_seed(seed)
    labels = _labels(samples, 2)
    upper = int((labels == 0).sum())
    t = torch.cat([torch.linspace(0, math.pi, upper), torch.linspace(0, math.pi, samples - upper)])
    x = torch.where(labels == 0, t.cos(), 1 - t.cos())
    y = torch.where(labels == 0, t.sin(), 0.5 - t.sin())
    points = torch.stack([x, y], dim=1)
    return Samples(points + noise * torch.randn(samples, 2, generator=generator), labels)


def circles(samples: int, noise: float, factor: float, *, seed: int) -> Samples:
    """Two concentric circles: class 0 of radius 1 outside, class 1 of radius `factor` inside."""
    _check(samples, noise)
    require(is_finite_number(factor) and 0 < factor < 1, "data.factor", factor,
            "a number in (0, 1): the inner circle's radius")
    generator = torch.Generator().manual_seed(seed)
    labels = _labels(samples, 2)
    angle = 2 * math.pi * torch.rand(samples, generator=generator)
    radius = torch.where(labels == 0, 1.0, float(factor))
    points = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)
    return Samples(points + noise * torch.randn(samples, 2, generator=generator), labels)


def xor(samples: int, noise: float, *, seed: int) -> Samples:
    """Points uniform on [-1, 1]^2, class 1 where x and y have opposite signs (the labels are
    those of the noise-free points; noise then blurs the boundary)."""
    _check(samples, noise)
    generator = torch.Generator().manual_seed(seed)
    points = 2 * torch.rand(samples, 2, generator=generator) - 1
    labels = (points[:, 0] * points[:, 1] < 0).long()
    return Samples(points + noise * torch.randn(samples, 2, generator=generator), labels)


def gaussians(samples: int, classes: int, noise: float, *, seed: int) -> Samples:
    """One round Gaussian blob a class, of standard deviation `noise`, centred on the circle of
    radius 1 at angles 2 pi c / classes: linearly separable when noise is small."""
    _check(samples, noise, classes)
    generator = torch.Generator().manual_seed(seed)
    labels = _labels(samples, classes)
    angle = 2 * math.pi * labels / classes
    centres = torch.stack([angle.cos(), angle.sin()], dim=1)
    return Samples(centres + noise * torch.randn(samples, 2, generator=generator), labels)


def digits(*, images: bool, scale: bool) -> Samples:
    """scikit-learn's bundled handwritten digits: 1797 samples of 8x8 pixels in 0..16, 10
    classes. images: [N, 1, 8, 8] (for model=convnet) instead of flat [N, 64]; scale: pixels
    divided by 16, into [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ConfigError(
            "data=digits needs scikit-learn, which ships the data set: pip install 'gradtrace[data]' "
            "(or pip install scikit-learn)"
        ) from None
    bunch = load_digits()
    inputs = torch.as_tensor(bunch.data, dtype=torch.float32)  # [1797, 64]
    if scale:
        inputs = inputs / 16
    if images:
        inputs = inputs.reshape(-1, 1, 8, 8)
    return Samples(inputs, torch.as_tensor(bunch.target, dtype=torch.long))
