"""Every ``--bg`` kind through the registry: parsing, what each renders, the halo-free blur and the bokeh."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from livematte.backgrounds import (Background, Blur, Bokeh, Colour, Image, Transparent, Video, background_kinds,
                                   cover, parse_background)
from livematte.errors import InputError

WIDTH, HEIGHT = 640, 360  # wider than the blurs' working size, so they really shrink and enlarge


def test_parse_every_kind(image_path, video_path):
    assert parse_background("#00ff00") == Colour((0, 255, 0))
    assert parse_background("#0F0") == Colour((0, 255, 0))
    assert parse_background("Green") == Colour((0, 255, 0))
    assert parse_background("blur") == Blur(25)
    assert parse_background("blur:40") == Blur(40)
    assert parse_background("bokeh") == Bokeh(40)
    assert parse_background("bokeh:12") == Bokeh(12)
    assert parse_background("transparent") == Transparent()
    image = parse_background(str(image_path))
    assert isinstance(image, Image) and image.path == image_path and image.pixels.shape == (60, 240, 3)
    assert parse_background(str(video_path)) == Video(video_path)
    assert [kind.channels for kind in background_kinds()].count(4) == 1  # only transparent keeps the alpha


@pytest.mark.parametrize("spec, message", [
    ("#12345", "not a colour"),
    ("no/such/file.png", "not a colour"),
    ("blur:x", "positive integer"),
    ("blur:0", "positive integer"),
    ("bokeh:-3", "positive integer"),
])
def test_bad_specs_are_one_line_input_errors(spec, message):
    with pytest.raises(InputError, match=message) as info:
        parse_background(spec)
    assert "\n" not in str(info.value)
    if message == "not a colour":  # the error lists every registered kind
        assert all(kind.usage in str(info.value) for kind in background_kinds())


def test_unreadable_files_are_input_errors(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a picture\n")
    with pytest.raises(InputError, match="not an image or a video"):
        parse_background(str(text))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(InputError, match="cannot be decoded|not an image"):
        parse_background(str(broken))
    with pytest.raises(InputError, match="not a file"):
        parse_background(str(tmp_path))


def test_image_is_scaled_to_cover_and_centre_cropped(image_path):
    frame = np.zeros((90, 160, 3), np.uint8)
    out = parse_background(str(image_path)).render(frame, np.zeros((90, 160), np.uint8))
    # 60x240 scaled by 1.5 to 90x360, the middle 160 columns kept: red ramps from ~67 to ~173
    assert abs(int(out[45, 0, 0]) - 67) <= 2 and abs(int(out[45, -1, 0]) - 173) <= 2
    assert (np.abs(out[..., 2].astype(int) - 200) <= 1).all()
    assert cover(np.zeros((10, 10, 3), np.uint8), (30, 20)).shape == (30, 20, 3)


def test_video_background_loops_without_a_seam(video_path):
    background = parse_background(str(video_path))
    frame, clear = np.zeros((90, 160, 3), np.uint8), np.zeros((90, 160), np.uint8)
    levels = [int(np.median(background.render(frame, clear))) for _ in range(12)]
    background.close()
    expected = [20, 70, 120, 170, 220] * 3
    assert all(abs(got - want) <= 3 for got, want in zip(levels, expected[:12])), levels


def test_renders_are_fresh_arrays_the_compositor_may_write_into(image_path):
    frame, clear = np.zeros((90, 160, 3), np.uint8), np.zeros((90, 160), np.uint8)
    for background in (Colour((1, 2, 3)), parse_background(str(image_path)), Blur(5), Bokeh(5)):
        first = background.render(frame, clear)
        first[:] = 77
        assert not (background.render(frame, clear) == 77).all(), background


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bright person (soft-edged ellipse) over a dark textured background: (frame, alpha uint8, background)."""
    rng = np.random.default_rng(7)
    y = np.linspace(0.0, 1.0, HEIGHT, dtype=np.float32)[:, None, None]
    background = np.broadcast_to(np.array([20, 60, 70], np.float32) + 40 * y, (HEIGHT, WIDTH, 3)).copy()
    for _ in range(12):  # discs to give the blur something to blur
        centre = (int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT)))
        cv2.circle(background, centre, int(rng.integers(10, 40)), rng.integers(0, 120, 3).tolist(), -1)
    grain = rng.normal(0, 25, (HEIGHT // 8, WIDTH // 8, 3)).astype(np.float32)  # blobs of about 8 px
    background = np.clip(background + cv2.resize(grain, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC), 0, 255)
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.ellipse(mask, (WIDTH // 2, HEIGHT), (WIDTH // 6, HEIGHT * 3 // 4), 0, 0, 360, 255, -1)
    alpha = cv2.GaussianBlur(mask, (0, 0), 2.0)
    person = np.array([250, 225, 190], np.float32) + rng.normal(0, 5, (HEIGHT, WIDTH, 3))
    a = alpha[..., None].astype(np.float32) / 255.0
    frame = np.clip(a * person + (1 - a) * background + 0.5, 0, 255).astype(np.uint8)
    return frame, alpha, background.astype(np.uint8)


def _beside_person(alpha: np.ndarray, near: float, far: float = 0.0) -> np.ndarray:
    """Pure-background pixels between ``far`` and ``near`` pixels from the person."""
    distance = cv2.distanceTransform((alpha == 0).astype(np.uint8), cv2.DIST_L2, 3)
    return (alpha == 0) & (distance < near) & (distance >= far)


def test_blur_has_no_halo_around_the_person():
    # the person's bright colours must not glow into the background around them, as a plain blur of the frame does
    frame, alpha, background = _scene()
    blur = Blur(25)
    ideal = blur.render(background, np.zeros_like(alpha))  # the true background, blurred: nobody in front of it
    ring = _beside_person(alpha, 50)
    error = lambda out: np.abs(out.astype(np.float32) - ideal)[ring].mean()  # noqa: E731
    halo_free, plain = error(blur.render(frame, alpha)), error(blur.render(frame, np.zeros_like(alpha)))
    assert halo_free < 1.5, halo_free
    assert halo_free < 0.25 * plain, (halo_free, plain)


def test_blur_of_a_frame_without_a_person_is_the_plain_blur():
    frame, _, _ = _scene()
    out = Blur(12).render(frame, np.zeros((HEIGHT, WIDTH), np.uint8))
    sharpness = lambda img: cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()  # noqa: E731
    assert sharpness(out) < 0.05 * sharpness(frame)
    assert abs(out.astype(float).mean() - frame.astype(float).mean()) < 3  # same colours, just blurred


def test_bokeh_is_sharp_beside_the_person_and_blurs_with_distance():
    frame, alpha, background = _scene()
    bokeh = Bokeh(30)
    out = bokeh.render(frame, alpha).astype(np.float32)
    reach = bokeh.reach * WIDTH  # where the blur is full
    near, far = _beside_person(alpha, 4), _beside_person(alpha, 10_000, reach + 4)
    error = lambda mask: np.abs(out - background)[mask].mean()  # noqa: E731
    assert error(near) < 4.0, error(near)           # in focus beside the person
    assert error(far) > 4 * error(near)
    full = Blur(30).render(frame, alpha).astype(np.float32)  # far away: the full, halo-free blur
    assert np.abs(out - full)[far].mean() < 1.0
    middle = _beside_person(alpha, reach / 2 + 4, reach / 2 - 4)
    assert 2 * error(near) < error(middle) < 0.85 * error(far)  # the blur grows with distance


def test_bokeh_without_a_person_blurs_everything_fully():
    frame, _, _ = _scene()
    clear = np.zeros((HEIGHT, WIDTH), np.uint8)
    difference = np.abs(Bokeh(20).render(frame, clear).astype(int) - Blur(20).render(frame, clear))
    assert difference.max() <= 1


def test_a_new_kind_is_one_registered_class():
    # what the registry promises a contributor: subclass, register, and --bg finds it
    from livematte import backgrounds

    class Stripes(Background):
        usage = "'stripes'"

        @classmethod
        def parse(cls, text: str) -> Stripes | None:
            return cls() if text == "stripes" else None

        def render(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
            out = np.zeros_like(rgb)
            out[::2] = 255
            return out

    kinds = list(backgrounds._KINDS)
    try:
        backgrounds.register_background(Stripes)
        assert isinstance(parse_background("stripes"), Stripes)
        with pytest.raises(InputError, match="'stripes'"):
            parse_background("plaid")
    finally:
        backgrounds._KINDS[:] = kinds
