"""gabic.images: what load_image says about an input it does not code as a viewer shows it; the one
converter of an ImageLike (as_rgb, as_image_tensor)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gabic.evaluate import read_images
from gabic.images import as_image_tensor, as_rgb, image_to_tensor, load_image


def _frames(n: int, width: int = 48, height: int = 40) -> list[Image.Image]:
    """``n`` different random RGB frames."""
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)) for _ in range(n)]


def animated_gif(path: Path, frames: int = 3) -> Path:
    """A looping GIF of ``frames`` frames, 48x40."""
    first, *rest = _frames(frames)
    first.save(path, save_all=True, append_images=rest, duration=100, loop=0)
    return path


def oriented_jpeg(path: Path, orientation: int) -> Path:
    """A 48x40 JPEG whose EXIF says viewers must turn it (``orientation``, 1..8)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    _frames(1)[0].save(path, exif=exif, quality=95)
    return path


def test_animated_gif_is_noted(tmp_path):
    path = animated_gif(tmp_path / "anim.gif")
    img, notes = load_image(path)
    assert "animated GIF: 3 frames, the first is coded" in notes
    with Image.open(path) as im:  # the first frame's pixels
        assert np.array_equal(np.asarray(img), np.asarray(im.convert("RGB")))


def test_multipage_tiff_is_noted(tmp_path):
    first, *rest = _frames(2)
    first.save(tmp_path / "pages.tif", save_all=True, append_images=rest)
    _, notes = load_image(tmp_path / "pages.tif")
    assert "multi-frame TIFF: 2 frames, the first is coded" in notes


@pytest.mark.parametrize(
    ("orientation", "shown"),
    [(6, "rotated 90 degrees clockwise"), (8, "rotated 90 degrees counter-clockwise"), (3, "rotated 180 degrees")],
)
def test_exif_orientation_is_noted_and_not_applied(tmp_path, orientation, shown):
    path = oriented_jpeg(tmp_path / "turned.jpg", orientation)
    img, notes = load_image(path)
    assert notes == [f"EXIF orientation {orientation} (viewers show it {shown}): coded as stored, not rotated"]
    assert img.size == (48, 40)  # as stored: not turned to 40x48
    with Image.open(path) as im:
        assert np.array_equal(np.asarray(img), np.asarray(im.convert("RGB")))


def test_exif_mirror_and_odd_values(tmp_path):
    _, notes = load_image(oriented_jpeg(tmp_path / "m.jpg", 2))
    assert notes == ["EXIF orientation 2 (viewers show it mirrored left to right): coded as stored, not mirrored"]
    _, notes = load_image(oriented_jpeg(tmp_path / "odd.jpg", 9))
    assert notes == ["EXIF orientation 9 (not a valid value; viewers may turn it): coded as stored"]


def test_plain_files_get_no_such_note(tmp_path):
    frame = _frames(1)[0]
    frame.save(tmp_path / "plain.png")
    frame.save(tmp_path / "still.gif")
    assert load_image(tmp_path / "plain.png")[1] == []
    assert load_image(oriented_jpeg(tmp_path / "upright.jpg", 1))[1] == []
    _, notes = load_image(tmp_path / "still.gif")
    assert notes == ["palette expanded to RGB"]  # a one-frame GIF: not animated


def test_evaluation_readers_pass_the_notes_on(tmp_path, caplog):
    folder = tmp_path / "set"
    folder.mkdir()
    oriented_jpeg(folder / "turned.jpg", 6)
    anim = animated_gif(tmp_path / "anim.gif")
    with caplog.at_level(logging.INFO, logger="gabic"):
        read_images(folder, load=False)
        as_rgb(anim)
    assert "turned.jpg: EXIF orientation 6 (viewers show it rotated 90 degrees clockwise)" in caplog.text
    assert "anim.gif: animated GIF: 3 frames, the first is coded" in caplog.text


def test_every_image_like_gives_the_same_pixels(tmp_path):
    photo = _frames(1)[0]  # 48x40
    photo.save(tmp_path / "photo.png")
    x = image_to_tensor(photo)  # (1, 3, 40, 48)
    for image in (photo, photo.convert("RGBA"), tmp_path / "photo.png", str(tmp_path / "photo.png"), x, x[0]):
        assert np.array_equal(np.asarray(as_rgb(image)), np.asarray(photo))
        assert torch.equal(as_image_tensor(image), x)


def test_a_tensor_keeps_its_values_and_as_rgb_rounds_them():
    x = torch.full((3, 20, 24), 0.5004, dtype=torch.float64)
    assert torch.equal(as_image_tensor(x), x.float()[None])
    rgb = as_rgb(x)
    assert rgb.size == (24, 20) and np.all(np.asarray(rgb) == 128)


@pytest.mark.parametrize(
    "bad,error,match",
    [
        (
            42,
            TypeError,
            r"^image must be a path or a PIL image, or a float tensor \(3, H, W\) or \(1, 3, H, W\) with values in \[0, 1\]; got int$",
        ),
        (np.zeros((8, 8, 3), np.uint8), TypeError, r"; got ndarray of shape \(8, 8, 3\)$"),
        (torch.rand(2, 3, 8, 8), ValueError, "one image \\(batch of 1\\), got a batch of 2"),
        (torch.rand(4, 8, 8), ValueError, r"\(3, H, W\) or \(1, 3, H, W\) tensor, got shape \(4, 8, 8\)"),
        (torch.zeros(3, 8, 8, dtype=torch.uint8), ValueError, r"float tensor with values in \[0, 1\], got dtype torch.uint8"),
        (torch.full((3, 8, 8), 255.0), ValueError, r"values in \[0, 1\], got values in 255..255"),
        (torch.full((3, 8, 8), float("nan")), ValueError, r"values in \[0, 1\], got values in nan..nan"),
    ],
    ids=["int", "array", "batch", "channels", "uint8", "0-255", "nan"],
)
def test_what_is_not_an_image_is_named(bad, error, match):
    for convert in (as_rgb, as_image_tensor):
        with pytest.raises(error, match=match):
            convert(bad)
